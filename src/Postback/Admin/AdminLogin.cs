using System.Globalization;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Postback.Organizations;
using Postback.Storage;
using Postback.Team;

namespace Postback.Admin;

/// Who a login secret makes you: an organization's API key → that organization; the
/// configured operator password (deprecated) → the first organization as admin; an operator
/// account's e-mail and password → its organization with its role.
public sealed class AdminLogin(PostbackDb db, IOptions<AdminOptions> options, UserAccounts accounts, TimeProvider time)
{
    public const string MethodClaim = "postback:login";
    // The key's SHA-256 (what the database holds, never the key): the session ends when the key is revoked.
    public const string KeyHashClaim = "postback:keyhash";
    // A user session made before the account's SessionVersion changed (role, reset, disabled, log out) ends.
    public const string SessionVersionClaim = "postback:sv";
    public const string MustChangeClaim = "postback:mustchange";

    /// An operator account's e-mail and password → that user, in their organization with their role.
    public async Task<ClaimsPrincipal?> SignInUserAsync(string email, string? password, CancellationToken ct) =>
        await accounts.VerifyAsync(email, password, ct) is { } user ? await PrincipalForUserAsync(user.Id, ct) : null;

    /// A new server-side session for the user (AdminSessions), with the account's current role.
    public async Task<ClaimsPrincipal> PrincipalForUserAsync(long userId, CancellationToken ct)
    {
        var user = await db.Users.AsNoTracking().FirstAsync(u => u.Id == userId, ct);
        var name = await db.Organizations.AsNoTracking().Where(o => o.Id == user.OrganizationId).Select(o => o.Name).FirstAsync(ct);
        var sessionId = await AdminSessions.StartAsync(db, user.OrganizationId, "user", time.GetUtcNow(), TimeSpan.FromHours(options.Value.SessionHours), ct);
        return new ClaimsPrincipal(new ClaimsIdentity(
        [
            new Claim(ApiKeyAuthenticationHandler.OrganizationClaim, user.OrganizationId.ToString(CultureInfo.InvariantCulture)),
            new Claim(ClaimTypes.Name, name),
            new Claim(MethodClaim, "user"),
            new Claim(AdminSessions.IdClaim, sessionId),
            new Claim(ClaimTypes.Role, user.Role),
            new Claim(TeamClaims.Actor, user.Email),
            new Claim(TeamClaims.OnBehalfOf, user.Email),
            new Claim(TeamClaims.UserId, user.Id.ToString(CultureInfo.InvariantCulture)),
            new Claim(SessionVersionClaim, user.SessionVersion.ToString(CultureInfo.InvariantCulture)),
            new Claim(MustChangeClaim, user.MustChangePassword ? "true" : "false"),
        ], AdminSetup.Scheme));
    }

    public async Task<ClaimsPrincipal?> SignInAsync(string? secret, CancellationToken ct)
    {
        secret = secret?.Trim();
        if (string.IsNullOrEmpty(secret) || secret.Length > 512)
        {
            return null;
        }
        long? organizationId = null;
        string? keyHash = null;
        string role = Roles.Admin, actor = "operator password";
        string? onBehalfOf = null;
        var password = options.Value.Password;
        if (!string.IsNullOrEmpty(password) && FixedTimeEquals(secret, password))
        {
            organizationId = await db.Organizations.AsNoTracking().OrderBy(o => o.Id).Select(o => (long?)o.Id).FirstOrDefaultAsync(ct);
        }
        else
        {
            keyHash = ApiKeys.Hash(secret);
            var key = await db.ApiKeys.AsNoTracking()
                .Where(k => k.KeyHash == keyHash && k.RevokedAt == null)
                .Select(k => new { k.OrganizationId, k.Name, k.Role, k.CreatedBy })
                .FirstOrDefaultAsync(ct);
            if (key is not null)
            {
                (organizationId, role, actor, onBehalfOf) = (key.OrganizationId, key.Role, "key:" + key.Name, key.CreatedBy);
            }
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
            new Claim(ClaimTypes.Role, role),
            new Claim(TeamClaims.Actor, actor),
        ], AdminSetup.Scheme);
        if (keyHash is not null)
        {
            identity.AddClaim(new Claim(KeyHashClaim, keyHash));
        }
        if (onBehalfOf is not null)
        {
            identity.AddClaim(new Claim(TeamClaims.OnBehalfOf, onBehalfOf));
        }
        return new ClaimsPrincipal(identity);
    }

    // Compares hashes, so neither the length nor a common prefix leaks through timing.
    private static bool FixedTimeEquals(string a, string b) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(a)), SHA256.HashData(Encoding.UTF8.GetBytes(b)));
}
