using System.Text.Json;
using System.Text.Json.Nodes;
using Postback.ExportProfiles;
using Postback.Outbound;

namespace Postback.Deliveries;

/// What an attempt log keeps of a request: everything, except the values of headers and
/// parameters whose names say they are credentials.
public static class SecretMasking
{
    public const string Mask = "********";

    private static readonly string[] SecretWords =
        ["authorization", "password", "passwd", "passphrase", "secret", "token", "key", "signature", "cookie", "credential", "auth"];

    public static bool IsSecretName(string name)
    {
        var n = name.ToLowerInvariant();
        return SecretWords.Any(n.Contains) || n is "pass" or "pwd";
    }

    public static RenderedRequest MaskRequest(RenderedRequest request)
    {
        var headers = request.Headers.Select(h => IsSecretName(h.Key) ? new KeyValuePair<string, string>(h.Key, Mask) : h).ToList();
        var url = MaskQuery(request.Url);
        var body = request.Body;
        if (body is not null)
        {
            body = RequestRenderer.IsJson(request.Header("Content-Type")) ? MaskJson(body) : MaskPairs(body);
        }
        return request with { Url = url, Headers = headers, Body = body };
    }

    private static string MaskQuery(string url)
    {
        var q = url.IndexOf('?');
        return q < 0 ? url : url[..(q + 1)] + MaskPairs(url[(q + 1)..]);
    }

    private static string MaskPairs(string encoded) =>
        string.Join('&', encoded.Split('&').Select(pair =>
        {
            var eq = pair.IndexOf('=');
            if (eq < 0)
            {
                return pair;
            }
            var name = Uri.UnescapeDataString(pair[..eq].Replace('+', ' '));
            return IsSecretName(name) ? pair[..(eq + 1)] + Mask : pair;
        }));

    private static string MaskJson(string body)
    {
        try
        {
            if (!HasSecretProperty(body))
            {
                // Nothing to mask: the body as rendered (RequestRenderer writes it compact, with
                // the same escaping a re-serialization would use).
                return body;
            }
            if (JsonNode.Parse(body) is not JsonObject json)
            {
                return body;
            }
            foreach (var name in json.Select(p => p.Key).Where(IsSecretName).ToList())
            {
                json[name] = Mask;
            }
            return json.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        }
        catch (JsonException)
        {
            return body;
        }
    }

    // Whether a top-level property of the JSON object has a credential's name; throws
    // JsonException on a body that is not JSON, as parsing it would.
    private static bool HasSecretProperty(string body)
    {
        var reader = new Utf8JsonReader(System.Text.Encoding.UTF8.GetBytes(body));
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.PropertyName && reader.CurrentDepth == 1 && IsSecretName(reader.GetString()!))
            {
                return true;
            }
        }
        return false;
    }
}
