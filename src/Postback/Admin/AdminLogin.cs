using System.Globalization;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.Admin;

/// Who a login secret makes you: an organization's API key → that organization; the
/// configured operator password → the first organization.
public sealed class AdminLogin(PostbackDb db, IOptions<AdminOptions> options, TimeProvider time)
{
    public const string MethodClaim = "postback:login";
    // The key's SHA-256 (what the database holds, never the key): the session ends when the key is revoked.
    public const string KeyHashClaim = "postback:keyhash";

    public async Task<ClaimsPrincipal?> SignInAsync(string? secret, CancellationToken ct)
    {
        secret = secret?.Trim();
        if (string.IsNullOrEmpty(secret) || secret.Length > 512)
        {
            return null;
        }
        long? organizationId = null;
        string? keyHash = null;
        var password = options.Value.Password;
        if (!string.IsNullOrEmpty(password) && FixedTimeEquals(secret, password))
        {
            organizationId = await db.Organizations.AsNoTracking().OrderBy(o => o.Id).Select(o => (long?)o.Id).FirstOrDefaultAsync(ct);
        }
        else
        {
            keyHash = ApiKeys.Hash(secret);
            organizationId = await db.ApiKeys.AsNoTracking()
                .Where(k => k.KeyHash == keyHash && k.RevokedAt == null)
                .Select(k => (long?)k.OrganizationId)
                .FirstOrDefaultAsync(ct);
        }
        if (organizationId is null)
        {
            return null;
        }
        var name = await db.Organizations.AsNoTracking().Where(o => o.Id == organizationId).Select(o => o.Name).FirstAsync(ct);
        var method = keyHash is null ? "password" : "api-key";
        var sessionId = await AdminSessions.StartAsync(db, organizationId.Value, method, time.GetUtcNow(), TimeSpan.FromHours(options.Value.SessionHours), ct);
        var identity = new ClaimsIdentity(
        [
            new Claim(ApiKeyAuthenticationHandler.OrganizationClaim, organizationId.Value.ToString(CultureInfo.InvariantCulture)),
            new Claim(ClaimTypes.Name, name),
            new Claim(MethodClaim, method),
            new Claim(AdminSessions.IdClaim, sessionId),
        ], AdminSetup.Scheme);
        if (keyHash is not null)
        {
            identity.AddClaim(new Claim(KeyHashClaim, keyHash));
        }
        return new ClaimsPrincipal(identity);
    }

    // Compares hashes, so neither the length nor a common prefix leaks through timing.
    private static bool FixedTimeEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(a)), SHA256.HashData(Encoding.UTF8.GetBytes(b)));
}
