using System.Globalization;
using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using Postback.Storage;
using Postback.Team;

namespace Postback.Organizations;

/// `Authorization: Bearer <key>` → the key's organization. Lookups are cached briefly by hash so a
/// burst of events costs one query, not one per request; a revoked key stops working within
/// that window in other processes (revoking through this one evicts it at once).
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    PostbackDb db,
    IMemoryCache cache,
    TimeProvider time)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";
    public const string OrganizationClaim = "postback:org";
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(30);

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        if (string.IsNullOrEmpty(header))
        {
            return AuthenticateResult.NoResult();
        }
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || header.Length <= 7)
        {
            return AuthenticateResult.Fail("The Authorization header must be 'Bearer <API key>'.");
        }
        var hash = ApiKeys.Hash(header[7..].Trim());
        var key = await cache.GetOrCreateAsync(CacheKey(hash), async entry =>
        {
            entry.AbsoluteExpirationRelativeToNow = CacheFor;
            var found = await db.ApiKeys.AsNoTracking()
                .Where(k => k.KeyHash == hash && k.RevokedAt == null)
                .Select(k => new CachedKey(k.Id, k.OrganizationId, k.Name, k.Role, k.CreatedBy))
                .FirstOrDefaultAsync(Context.RequestAborted);
            if (found is not null)
            {
                // "Last used" is as fresh as this cache: one write per key per CacheFor, not one per call.
                await db.WriteInTurnAsync(() => db.ApiKeys.Where(k => k.Id == found.Id)
                    .ExecuteUpdateAsync(s => s.SetProperty(k => k.LastUsedAt, time.GetUtcNow()), Context.RequestAborted), Context.RequestAborted);
            }
            return found;
        });
        if (key is null)
        {
            return AuthenticateResult.Fail("The API key is not valid.");
        }
        var identity = new ClaimsIdentity(
        [
            new Claim(OrganizationClaim, key.OrganizationId.ToString(CultureInfo.InvariantCulture)),
            new Claim(ClaimTypes.Role, key.Role),
            new Claim(TeamClaims.Actor, "key:" + key.Name),
            new Claim(TeamClaims.KeyId, key.Id.ToString(CultureInfo.InvariantCulture)),
        ], SchemeName, ClaimTypes.Name, ClaimTypes.Role);
        if (key.CreatedBy is not null)
        {
            identity.AddClaim(new Claim(TeamClaims.OnBehalfOf, key.CreatedBy));
        }
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    public static string CacheKey(string keyHash) => "apikey:" + keyHash;

    private sealed record CachedKey(long Id, long OrganizationId, string Name, string Role, string? CreatedBy);

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var result = await HandleAuthenticateOnceSafeAsync();
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Bearer";
        var detail = result.Failure?.Message ?? "An API key is required: send 'Authorization: Bearer <API key>'.";
        await Results.Problem(statusCode: 401, title: "Unauthorized.", detail: detail).ExecuteAsync(Context);
    }

    protected override async Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        await Results.Problem(statusCode: 403, title: "Forbidden.").ExecuteAsync(Context);
    }
}

public static class OrganizationClaims
{
    public static long OrganizationId(this ClaimsPrincipal user) =>
        long.Parse(user.FindFirstValue(ApiKeyAuthenticationHandler.OrganizationClaim)
            ?? throw new InvalidOperationException("The request is not authenticated."), CultureInfo.InvariantCulture);
}
