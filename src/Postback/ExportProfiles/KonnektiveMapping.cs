using System.Text.Json;
using System.Text.RegularExpressions;
using Postback.Infrastructure;

namespace Postback.ExportProfiles;

/// Konnektive's field-mapping JSON (seed 000): {"exportName": "[field]" | "static value"}.
/// A value that is exactly one bracketed merge tag is a field; anything else is static.
public static partial class KonnektiveMapping
{
    public static (List<ExportMapping> Mappings, ValidationErrors Errors) Import(JsonElement json)
    {
        var errors = new ValidationErrors();
        var mappings = new List<ExportMapping>();
        if (json.ValueKind != JsonValueKind.Object)
        {
            errors.Add("mapping", "must be a JSON object of export names to \"[field]\" or static values");
            return (mappings, errors);
        }
        foreach (var p in json.EnumerateObject())
        {
            var path = $"mapping.{p.Name}";
            switch (p.Value.ValueKind)
            {
                case JsonValueKind.String when TryGetString(p.Value) is { } value:
                    var tag = TagPattern().Match(value.Trim());
                    mappings.Add(tag.Success ? new ExportMapping(p.Name, tag.Groups[1].Value) : new ExportMapping(p.Name, null, value));
                    break;
                case JsonValueKind.Number:
                    mappings.Add(new ExportMapping(p.Name, null, p.Value.GetRawText()));
                    break;
                case JsonValueKind.True or JsonValueKind.False:
                    mappings.Add(new ExportMapping(p.Name, null, p.Value.ValueKind == JsonValueKind.True ? "1" : "0"));
                    break;
                default:
                    errors.Add(path, "must be a \"[field]\" merge tag or a static string");
                    break;
            }
        }
        if (mappings.Count == 0 && !errors.Any)
        {
            errors.Add("mapping", "holds no mappings");
        }
        return (mappings, errors);
    }

    private static string? TryGetString(JsonElement element)
    {
        try
        {
            return element.GetString();
        }
        catch (InvalidOperationException)
        {
            // A lone surrogate escape: valid JSON, not text.
            return null;
        }
    }

    /// The reverse: a profile's mappings as Konnektive's JSON, to paste into a CRM.
    public static Dictionary<string, string> Export(IEnumerable<ExportMapping> mappings)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var m in mappings)
        {
            result.TryAdd(m.ExportName, m.Field is not null ? $"[{m.Field}]" : m.Static ?? "");
        }
        return result;
    }

    [GeneratedRegex(@"^\[\s*([A-Za-z][A-Za-z0-9_]*)\s*\]$")]
    private static partial Regex TagPattern();
}
