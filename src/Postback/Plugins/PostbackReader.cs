using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Primitives;

namespace Postback.Plugins;

/// Reads a CRM postback into flat name/value pairs, wherever they came from: the query
/// string, a form body or a JSON object body. Nothing here knows what the fields mean.
public static class PostbackReader
{
    public const string SecretHeader = "X-Postback-Secret";

    public sealed record Raw(
        IReadOnlyList<KeyValuePair<string, string>> Pairs,
        IReadOnlyList<string> Secrets,
        string? ErrorField,
        string? Error,
        bool TooLarge);

    public static async Task<Raw> ReadAsync(HttpRequest request, int maxBodyBytes, CancellationToken ct)
    {
        var pairs = new List<KeyValuePair<string, string>>();
        var secrets = new List<string>();
        foreach (var (key, values) in request.Query)
        {
            Add(pairs, key, values);
        }
        foreach (var value in request.Headers[SecretHeader])
        {
            if (!string.IsNullOrEmpty(value))
            {
                secrets.Add(value);
            }
        }

        if (!HttpMethods.IsGet(request.Method) && (request.ContentLength ?? -1) != 0)
        {
            if (request.ContentLength > maxBodyBytes)
            {
                return new Raw(pairs, secrets, "body", $"the body is larger than {maxBodyBytes} bytes", TooLarge: true);
            }
            byte[] body;
            try
            {
                body = await ReadCappedAsync(request.Body, maxBodyBytes, ct);
            }
            catch (BodyTooLargeException)
            {
                return new Raw(pairs, secrets, "body", $"the body is larger than {maxBodyBytes} bytes", TooLarge: true);
            }
            catch (BadHttpRequestException bad) when (bad.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                return new Raw(pairs, secrets, "body", $"the body is larger than {maxBodyBytes} bytes", TooLarge: true);
            }
            var error = ParseBody(request.ContentType, body, pairs);
            if (error is not null)
            {
                return new Raw(pairs, WithSecrets(secrets, pairs), error.Value.Field, error.Value.Reason, TooLarge: false);
            }
        }
        return new Raw(pairs, WithSecrets(secrets, pairs), null, null, TooLarge: false);
    }

    private static List<string> WithSecrets(List<string> secrets, List<KeyValuePair<string, string>> pairs)
    {
        secrets.AddRange(pairs.Where(p => p.Key.Equals("secret", StringComparison.OrdinalIgnoreCase) && p.Value.Length > 0).Select(p => p.Value));
        return secrets;
    }

    private static (string Field, string Reason)? ParseBody(string? contentType, byte[] body, List<KeyValuePair<string, string>> pairs)
    {
        if (body.Length == 0)
        {
            return null;
        }
        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(body);
        }
        catch (DecoderFallbackException)
        {
            return ("body", "must be UTF-8 text");
        }
        var media = contentType?.Split(';')[0].Trim().ToLowerInvariant() ?? "";
        // Some CRMs label a form body text/plain or send no type at all: a body that starts
        // with '{' is JSON, anything else is read as a form.
        var json = media == "application/json" || media.EndsWith("+json", StringComparison.Ordinal)
            || (media != "application/x-www-form-urlencoded" && text.TrimStart().StartsWith('{'));
        if (media.StartsWith("multipart/", StringComparison.Ordinal))
        {
            return ("body", "send the fields as a query string, a form (application/x-www-form-urlencoded) or a JSON object");
        }
        if (!json)
        {
            foreach (var (key, values) in QueryHelpers.ParseQuery(text))
            {
                Add(pairs, key, values);
            }
            return null;
        }
        try
        {
            using var document = JsonDocument.Parse(text);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                return ("body", "must be a JSON object of field names and values");
            }
            foreach (var p in document.RootElement.EnumerateObject())
            {
                switch (p.Value.ValueKind)
                {
                    case JsonValueKind.Null:
                        break;
                    case JsonValueKind.String:
                        string value;
                        try
                        {
                            value = p.Value.GetString()!;
                        }
                        catch (InvalidOperationException)
                        {
                            return (p.Name, "must be valid text; it holds a lone UTF-16 surrogate escape");
                        }
                        pairs.Add(new(p.Name, value));
                        break;
                    case JsonValueKind.Number:
                        pairs.Add(new(p.Name, p.Value.GetRawText()));
                        break;
                    case JsonValueKind.True:
                        pairs.Add(new(p.Name, "true"));
                        break;
                    case JsonValueKind.False:
                        pairs.Add(new(p.Name, "false"));
                        break;
                    default:
                        return (p.Name, "must be a string, number or boolean: a postback is a flat object (line items as product1_sku, product1_qty, ...)");
                }
            }
            return null;
        }
        catch (JsonException e)
        {
            return ("body", "is not valid JSON (" + e.Message.Split(". ")[0].TrimEnd('.') + ")");
        }
    }

    private static void Add(List<KeyValuePair<string, string>> pairs, string key, StringValues values)
    {
        foreach (var value in values)
        {
            pairs.Add(new(key, value ?? ""));
        }
    }

    private sealed class BodyTooLargeException : Exception;

    private static async Task<byte[]> ReadCappedAsync(Stream body, int max, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int read;
        while ((read = await body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + read > max)
            {
                throw new BodyTooLargeException();
            }
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }

    /// The fields by name, case-insensitively ("postalcode" is "postalCode"). A name given twice
    /// with different values is an error: we would otherwise have to guess which one the CRM meant.
    public static IReadOnlyDictionary<string, string> Fields(IReadOnlyList<KeyValuePair<string, string>> pairs, Infrastructure.ValidationErrors errors)
    {
        var fields = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in pairs)
        {
            if (key.Equals("secret", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }
            if (key.Length == 0)
            {
                continue;
            }
            if (fields.TryGetValue(key, out var earlier))
            {
                if (earlier.Trim() != value.Trim())
                {
                    errors.Add(key, "is given more than once with different values");
                }
                continue;
            }
            fields[key] = value;
        }
        return fields;
    }

    /// The payload as the inbound log keeps it: form-encoded pairs, secrets and card data masked
    /// (the order never keeps a card number, and neither does the log of what the CRM sent).
    public static string ForLog(IReadOnlyList<KeyValuePair<string, string>> pairs, string? instanceSecret, int max)
    {
        var text = new StringBuilder();
        foreach (var (key, value) in pairs)
        {
            if (text.Length > 0)
            {
                text.Append('&');
            }
            text.Append(Uri.EscapeDataString(key)).Append('=')
                .Append(Deliveries.SecretMasking.IsSecretName(key) || Orders.CardData.IsCardName(key) || Orders.CardData.LooksLikeCardNumber(value)
                    ? Deliveries.SecretMasking.Mask
                    : Uri.EscapeDataString(value));
        }
        var payload = text.ToString();
        // The instance's secret mapped into some other field is still the secret.
        if (instanceSecret is { Length: >= 8 })
        {
            payload = payload.Replace(Uri.EscapeDataString(instanceSecret), Deliveries.SecretMasking.Mask, StringComparison.Ordinal);
        }
        return payload.Length <= max ? payload : payload[..max] + "…";
    }
}
