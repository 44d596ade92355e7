using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;
using Postback.Infrastructure;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.Team;

public sealed record ApiKeyInput(string? Name, string? Role);

// Never the key itself, nor its hash: the prefix tells keys apart.
public sealed record ApiKeyView(long Id, string Name, string Role, string Prefix, DateTimeOffset CreatedAt, DateTimeOffset? LastUsedAt)
{
    public static ApiKeyView From(ApiKey k) => new(k.Id, k.Name, k.Role, k.Prefix, k.CreatedAt, k.LastUsedAt);
}

// The one answer that carries the key: it is shown once and cannot be read again.
public sealed record CreatedApiKeyView(long Id, string Name, string Role, string Prefix, DateTimeOffset CreatedAt, string Key);

/// Creating and revoking keys, shared by the API and the admin page.
public static class ApiKeyOperations
{
    public static Task<List<ApiKey>> ListAsync(PostbackDb db, long organizationId, CancellationToken ct) =>
        db.ApiKeys.AsNoTracking().Where(k => k.OrganizationId == organizationId && k.RevokedAt == null).OrderBy(k => k.Id).ToListAsync(ct);

    public static ValidationErrors Validate(ApiKeyInput input)
    {
        var errors = new ValidationErrors();
        var name = input.Name?.Trim();
        if (string.IsNullOrEmpty(name))
        {
            errors.Add("name", "is required");
        }
        else if (name.Length > 200)
        {
            errors.Add("name", "must be at most 200 characters");
        }
        if (string.IsNullOrWhiteSpace(input.Role))
        {
            errors.Add("role", "is required: admin, operator or viewer");
        }
        else if (!Roles.IsValid(input.Role))
        {
            errors.Add("role", $"'{input.Role}' is not a role: admin, operator or viewer");
        }
        return errors;
    }

    public static async Task<CreatedApiKeyView> CreateAsync(PostbackDb db, long organizationId, ApiKeyInput input, string? createdBy, TimeProvider time, CancellationToken ct)
    {
        var key = ApiKeys.Generate();
        var entity = new ApiKey
        {
            OrganizationId = organizationId,
            Name = input.Name!.Trim(),
            Role = input.Role!,
            KeyHash = ApiKeys.Hash(key),
            Prefix = ApiKeys.DisplayPrefix(key),
            CreatedBy = createdBy,
            CreatedAt = time.GetUtcNow(),
        };
        db.ApiKeys.Add(entity);
        await db.SaveChangesInTurnAsync(ct);
        return new CreatedApiKeyView(entity.Id, entity.Name, entity.Role, entity.Prefix, entity.CreatedAt, key);
    }

    /// False when there is no such live key in the organization.
    public static async Task<bool> RevokeAsync(PostbackDb db, IMemoryCache cache, long organizationId, long id, TimeProvider time, CancellationToken ct)
    {
        var key = await db.ApiKeys.FirstOrDefaultAsync(k => k.Id == id && k.OrganizationId == organizationId && k.RevokedAt == null, ct);
        if (key is null)
        {
            return false;
        }
        key.RevokedAt = time.GetUtcNow();
        await db.SaveChangesInTurnAsync(ct);
        // This process stops accepting it now; others within the authentication cache's lifetime.
        cache.Remove(ApiKeyAuthenticationHandler.CacheKey(key.KeyHash));
        return true;
    }
}

internal static class ApiKeysApi
{
    public static RouteGroupBuilder MapApiKeys(this RouteGroupBuilder api)
    {
        var group = api.MapGroup("/api-keys").WithTags("Team").RequireAuthorization(RolePolicies.Admin);
        group.MapGet("/", List).WithSummary("The organization's API keys: name, role, prefix and last use (never the key).");
        group.MapPost("/", Create).WithSummary("Create a key {name, role}; the answer holds the key, shown this once.");
        group.MapDelete("/{id:long}", Revoke).WithSummary("Revoke a key: the next call with it is 401.");
        return api;
    }

    private static async Task<Ok<List<ApiKeyView>>> List(ClaimsPrincipal user, PostbackDb db, CancellationToken ct) =>
        TypedResults.Ok((await ApiKeyOperations.ListAsync(db, user.OrganizationId(), ct)).Select(ApiKeyView.From).ToList());

    private static async Task<Results<Created<CreatedApiKeyView>, ValidationProblem>> Create(
        ApiKeyInput input, ClaimsPrincipal user, PostbackDb db, TimeProvider time, CancellationToken ct)
    {
        var errors = ApiKeyOperations.Validate(input);
        if (errors.Any)
        {
            return Problems.Validation(errors);
        }
        var created = await ApiKeyOperations.CreateAsync(db, user.OrganizationId(), input, user.OnBehalfOf() ?? user.Actor(), time, ct);
        return TypedResults.Created($"/api/v1/api-keys/{created.Id}", created);
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> Revoke(
        long id, ClaimsPrincipal user, PostbackDb db, IMemoryCache cache, TimeProvider time, CancellationToken ct) =>
        await ApiKeyOperations.RevokeAsync(db, cache, user.OrganizationId(), id, time, ct)
            ? TypedResults.NoContent()
            : Problems.NotFound($"There is no API key {id}.");
}
