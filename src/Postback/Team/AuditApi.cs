using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Postback.Infrastructure;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.Team;

/// A changed field: its value before and after, as text (lists as JSON; secrets as "***").
public sealed record AuditChange(string? From, string? To);

public sealed record AuditEntryView(
    long Id, DateTimeOffset At, string Actor, string Action, string ResourceType, string? ResourceId,
    IReadOnlyDictionary<string, AuditChange>? Changes)
{
    public static AuditEntryView From(AuditEntry e) =>
        new(e.Id, e.At, e.Actor, e.Action, e.ResourceType, e.ResourceId,
            e.Changes is null ? null : JsonSerializer.Deserialize<Dictionary<string, AuditChange>>(e.Changes, AuditLog.JsonOptions));
}

public sealed record AuditPage(IReadOnlyList<AuditEntryView> Items, long? NextBefore);

internal static class AuditApi
{
    public const int MaxLimit = 500;

    public static RouteGroupBuilder MapAudit(this RouteGroupBuilder api)
    {
        api.MapGet("/audit", List).WithTags("Team").RequireAuthorization(RolePolicies.Admin)
            .WithSummary("The audit log, newest first: who, when, what, which resource, the changed fields (secrets masked). Page with ?before=<nextBefore>.");
        return api;
    }

    public static async Task<AuditPage> PageAsync(PostbackDb db, long organizationId, int limit, long? before, CancellationToken ct)
    {
        var query = db.Audit.AsNoTracking().Where(e => e.OrganizationId == organizationId);
        if (before is not null)
        {
            query = query.Where(e => e.Id < before);
        }
        var rows = await query.OrderByDescending(e => e.Id).Take(limit + 1).ToListAsync(ct);
        var more = rows.Count > limit;
        var items = rows.Take(limit).Select(AuditEntryView.From).ToList();
        return new AuditPage(items, more ? items[^1].Id : null);
    }

    private static async Task<Results<Ok<AuditPage>, ValidationProblem>> List(
        ClaimsPrincipal user, PostbackDb db, CancellationToken ct, int limit = 100, long? before = null)
    {
        if (limit is < 1 or > MaxLimit)
        {
            return Problems.Validation("limit", $"must be from 1 to {MaxLimit}");
        }
        return TypedResults.Ok(await PageAsync(db, user.OrganizationId(), limit, before, ct));
    }
}
