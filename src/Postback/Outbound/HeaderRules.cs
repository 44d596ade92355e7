namespace Postback.Outbound;

/// The one rule for a mapped header, applied where a profile is saved and again where its
/// request is built, so a profile that saved is a profile that sends.
///
/// Values must be printable ASCII (tabs allowed). HTTP/1.1 carries header values as bytes and
/// .NET's sender refuses anything outside ASCII; Postback does not encode such a value (RFC 8187
/// `UTF-8''caf%C3%A9` form is defined only for parameters of a few headers, and a receiver that
/// expects a plain value would read the encoding literally), it refuses it and names the mapping.
public static class HeaderRules
{
    // Headers the hub sets on every delivery: a mapping would replace the id a receiver
    // deduplicates on or the signature it verifies.
    public static readonly IReadOnlySet<string> Reserved = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "X-Postback-Delivery-Id", "webhook-id", "webhook-timestamp", "webhook-signature",
    };

    public static string? ValueProblem(string value)
    {
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c is '\r' or '\n')
            {
                return "a header value must not contain CR or LF (line breaks)";
            }
            if ((c < ' ' && c != '\t') || c == '\x7f')
            {
                return $"a header value must be printable ASCII, without control characters; U+{(int)c:X4} at position {i + 1} is one";
            }
            if (c > '~')
            {
                return $"a header value must be printable ASCII; '{c}' at position {i + 1} is not (Postback does not encode header values)";
            }
        }
        return null;
    }
}

/// A request that can never be sent as the profile describes it: no retry would change that.
public sealed class UnsendableRequestException(string message) : ArgumentException(message);
