using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.Html;

namespace Postback.Admin;

/// How the pages show values: times in the organization's time zone (its display setting,
/// UTC unless changed), to the second, with the UTC time on hover.
public static class Fmt
{
    public const string ZoneItem = "postback:display-zone";

    // Backed by one AsyncLocal for the whole process: any instance sees the current request.
    private static readonly IHttpContextAccessor Http = new HttpContextAccessor();

    /// The zone the current admin page shows times in (DisplayTimeZoneFilter sets it).
    public static TimeZoneInfo Zone => Http.HttpContext?.Items[ZoneItem] as TimeZoneInfo ?? TimeZoneInfo.Utc;

    public static string Utc(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + " UTC";

    /// In the organization's zone, with its offset ("2026-12-01 23:37:00 -05:00"), or UTC.
    public static string Time(DateTimeOffset t)
    {
        var zone = Zone;
        if (zone == TimeZoneInfo.Utc)
        {
            return Utc(t);
        }
        var local = TimeZoneInfo.ConvertTime(t, zone);
        return local.ToString("yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture);
    }

    public static string Time(DateTimeOffset? t) => t is { } v ? Time(v) : "";

    /// A <time> element: the local time, the UTC time on hover, ISO 8601 in datetime.
    public static IHtmlContent When(DateTimeOffset t)
    {
        var utc = t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
        return new HtmlString($"<time datetime=\"{utc}\" title=\"{HtmlEncoder.Default.Encode(Utc(t))}\">{HtmlEncoder.Default.Encode(Time(t))}</time>");
    }

    public static IHtmlContent When(DateTimeOffset? t) => t is { } v ? When(v) : HtmlString.Empty;

    public static IHtmlContent When(DateTimeOffset? t, string otherwise) => t is { } v ? When(v) : new HtmlString(HtmlEncoder.Default.Encode(otherwise));

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
