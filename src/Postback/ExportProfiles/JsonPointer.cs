using System.Globalization;
using System.Text.Json;

namespace Postback.ExportProfiles;

/// RFC 6901 JSON Pointers, as captures use them: "" is the whole document, otherwise each
/// "/"-separated token names an object member or an array index, with "~1" for "/" and "~0"
/// for "~" inside a token.
public static class JsonPointer
{
    public const int MaxLength = 500;

    /// Why the text is not an RFC 6901 pointer, or null when it is.
    public static string? Check(string pointer)
    {
        if (pointer.Length > MaxLength)
        {
            return $"must be at most {MaxLength} characters";
        }
        if (pointer.StartsWith('#'))
        {
            return "must be a JSON Pointer (RFC 6901) such as /data/erpId, not the URI fragment form starting with #";
        }
        if (pointer.Length > 0 && pointer[0] != '/')
        {
            return "must be a JSON Pointer (RFC 6901): empty for the whole answer, or starting with /, such as /data/erpId";
        }
        for (var i = 0; i < pointer.Length; i++)
        {
            if (pointer[i] == '~' && (i + 1 == pointer.Length || pointer[i + 1] is not ('0' or '1')))
            {
                return "is not a JSON Pointer (RFC 6901): ~ must be followed by 0 (for ~) or 1 (for /)";
            }
            if (char.IsControl(pointer[i]))
            {
                return "must not contain control characters";
            }
        }
        return null;
    }

    /// The element the pointer names in the document, or null (with the token that was not
    /// found) when it names nothing.
    public static JsonElement? Evaluate(JsonElement document, string pointer, out string? missing)
    {
        missing = null;
        if (pointer.Length == 0)
        {
            return document;
        }
        var current = document;
        foreach (var raw in pointer[1..].Split('/'))
        {
            var token = raw.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);
            if (current.ValueKind == JsonValueKind.Object && current.TryGetProperty(token, out var member))
            {
                current = member;
                continue;
            }
            if (current.ValueKind == JsonValueKind.Array && IsIndex(token)
                && int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var index) && index < current.GetArrayLength())
            {
                current = current[index];
                continue;
            }
            missing = token;
            return null;
        }
        return current;
    }

    // RFC 6901: an array index is 0 or digits without a leading zero ("-" names no element).
    private static bool IsIndex(string token) =>
        token.Length > 0 && token.All(char.IsAsciiDigit) && (token == "0" || token[0] != '0');
}
