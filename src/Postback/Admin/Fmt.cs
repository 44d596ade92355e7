using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Postback.Admin;

/// How the pages show values: times in UTC, to the second, and marked as such.
public static class Fmt
{
    public static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + " UTC";

    public static string Time(DateTimeOffset? t) => t is { } v ? Time(v) : "";

    public static string Ms(double ms) => ms.ToString("0.#", CultureInfo.InvariantCulture) + " ms";

    /// A datetime-local input's value (UTC).
    public static string Input(DateTimeOffset? t) => t is { } v ? v.UtcDateTime.ToString("yyyy-MM-ddTHH:mm", CultureInfo.InvariantCulture) : "";

    /// Stored headers (a JSON list of key/value pairs, or an object), one "Name: value" a line.
    public static string Headers(string? json)
    {
        if (string.IsNullOrEmpty(json))
        {
            return "";
        }
        using var doc = JsonDocument.Parse(json);
        var sb = new StringBuilder();
        if (doc.RootElement.ValueKind == JsonValueKind.Array)
        {
            foreach (var h in doc.RootElement.EnumerateArray())
            {
                if (h.ValueKind == JsonValueKind.Array && h.GetArrayLength() == 2)
                {
                    sb.Append(h[0].ToString()).Append(": ").Append(h[1].ToString()).Append('\n');
                }
                else if (h.ValueKind == JsonValueKind.Object && h.TryGetProperty("key", out var k) && h.TryGetProperty("value", out var v))
                {
                    sb.Append(k).Append(": ").Append(v).Append('\n');
                }
                else if (h.ValueKind == JsonValueKind.Object && h.TryGetProperty("Key", out var k2) && h.TryGetProperty("Value", out var v2))
                {
                    sb.Append(k2).Append(": ").Append(v2).Append('\n');
                }
                else
                {
                    sb.Append(h.ToString()).Append('\n');
                }
            }
        }
        else if (doc.RootElement.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                sb.Append(p.Name).Append(": ").Append(p.Value.ToString()).Append('\n');
            }
        }
        return sb.ToString();
    }
}
