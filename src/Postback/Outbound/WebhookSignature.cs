using System.Security.Cryptography;
using System.Text;

namespace Postback.Outbound;

/// Standard Webhooks signatures (PRODUCT.md section 6), optional per profile: with a signing
/// secret `whsec_<base64>`, each request carries `webhook-timestamp` (Unix seconds when it is
/// sent) and `webhook-signature: v1,<base64 HMAC-SHA256 of "{webhook-id}.{timestamp}.{body}">`
/// next to `webhook-id`, so a receiver's Standard Webhooks library verifies it as it is. A
/// request without a body signs the empty string, as the specification does: only body-carrying
/// profiles (a header mapping makes a POST) get their fields covered.
public static class WebhookSignature
{
    public const string Prefix = "whsec_";
    public const string IdHeader = "webhook-id";
    public const string TimestampHeader = "webhook-timestamp";
    public const string SignatureHeader = "webhook-signature";

    /// Null when the secret is well formed, else why not.
    public static string? Check(string secret)
    {
        if (!secret.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return $"must start with {Prefix} (a Standard Webhooks secret)";
        }
        var key = Key(secret);
        return key is null or { Length: < 24 or > 64 }
            ? $"must be {Prefix} followed by the base64 of 24 to 64 random bytes"
            : null;
    }

    public static string Generate() => Prefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    public static string Sign(string secret, string id, long timestamp, string? body)
    {
        var key = Key(secret) ?? throw new ArgumentException("not a Standard Webhooks secret", nameof(secret));
        var mac = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{id}.{timestamp}.{body}"));
        return "v1," + Convert.ToBase64String(mac);
    }

    /// The request with its timestamp and signature headers added (signed as it goes out, so a
    /// retry carries a fresh timestamp).
    public static RenderedRequest Add(RenderedRequest request, string secret, string id, DateTimeOffset now)
    {
        var timestamp = now.ToUnixTimeSeconds();
        return request with
        {
            Headers = [.. request.Headers, new(TimestampHeader, timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                new(SignatureHeader, Sign(secret, id, timestamp, request.Body))],
        };
    }

    private static byte[]? Key(string secret)
    {
        try
        {
            return Convert.FromBase64String(secret[Prefix.Length..]);
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
