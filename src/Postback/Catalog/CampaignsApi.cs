using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Postback.Infrastructure;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.Catalog;

public sealed record ProductInput(string? ProductId, string? Sku, string? Name, decimal? Price, bool Recurring = false);

public sealed record CampaignInput(string? CampaignId, string? Name, IReadOnlyList<ProductInput>? Products);

public sealed record ProductView(string ProductId, string? Sku, string Name, decimal? Price, bool Recurring);

public sealed record CampaignView(string CampaignId, string Name, IReadOnlyList<ProductView> Products, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt)
{
    public static CampaignView From(Campaign c) => new(
        c.CampaignId, c.Name,
        c.Products.OrderBy(p => p.Id).Select(p => new ProductView(p.ProductId, p.Sku, p.Name, p.Price, p.Recurring)).ToList(),
        c.CreatedAt, c.UpdatedAt);
}

internal static class CampaignsApi
{
    public static RouteGroupBuilder MapCampaigns(this RouteGroupBuilder api)
    {
        var group = api.MapGroup("/campaigns").WithTags("Campaigns");
        group.MapGet("/", List).WithSummary("All campaigns with their products.");
        group.MapPost("/", Create).WithSummary("Create a campaign with its products.");
        group.MapGet("/{campaignId}", Get).WithSummary("One campaign with its products.");
        group.MapPut("/{campaignId}", Replace).WithSummary("Replace a campaign's name and products.");
        group.MapDelete("/{campaignId}", Delete).WithSummary("Delete a campaign and its products.");
        return api;
    }

    private static async Task<Ok<List<CampaignView>>> List(ClaimsPrincipal user, PostbackDb db, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        var campaigns = await db.Campaigns.AsNoTracking().Include(c => c.Products)
            .Where(c => c.OrganizationId == organizationId).OrderBy(c => c.CampaignId).ToListAsync(ct);
        return TypedResults.Ok(campaigns.Select(CampaignView.From).ToList());
    }

    private static async Task<Results<Ok<CampaignView>, ProblemHttpResult>> Get(string campaignId, ClaimsPrincipal user, PostbackDb db, CancellationToken ct)
    {
        var campaign = await Find(db, user.OrganizationId(), campaignId, ct);
        return campaign is null ? NotFound(campaignId) : TypedResults.Ok(CampaignView.From(campaign));
    }

    private static async Task<Results<Created<CampaignView>, ValidationProblem, ProblemHttpResult>> Create(
        CampaignInput input, ClaimsPrincipal user, PostbackDb db, TimeProvider time, CancellationToken ct)
    {
        var result = await CampaignOperations.CreateAsync(db, user.OrganizationId(), input, time.GetUtcNow(), ct);
        if (result.Conflict is { } conflict)
        {
            return Problems.Conflict(conflict.Field, conflict.Reason);
        }
        if (result.Errors.Any)
        {
            return Problems.Validation(result.Errors);
        }
        return TypedResults.Created($"/api/v1/campaigns/{result.Campaign!.CampaignId}", CampaignView.From(result.Campaign));
    }

    private static async Task<Results<Ok<CampaignView>, ValidationProblem, ProblemHttpResult>> Replace(
        string campaignId, CampaignInput input, ClaimsPrincipal user, PostbackDb db, IEnumerable<ICampaignUsage> uses, TimeProvider time, CancellationToken ct)
    {
        var errors = CampaignOperations.Validate(input, campaignId);
        if (errors.Any)
        {
            return Problems.Validation(errors);
        }
        var campaign = await CampaignOperations.FindAsync(db, user.OrganizationId(), campaignId, ct);
        if (campaign is null)
        {
            return NotFound(campaignId);
        }
        var result = await CampaignOperations.ReplaceAsync(db, uses, campaign, input, time.GetUtcNow(), ct);
        if (result.Conflict is { } conflict)
        {
            return Problems.Conflict(conflict.Field, conflict.Reason);
        }
        if (result.Errors.Any)
        {
            return Problems.Validation(result.Errors);
        }
        return TypedResults.Ok(CampaignView.From(campaign));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> Delete(
        string campaignId, ClaimsPrincipal user, PostbackDb db, IEnumerable<ICampaignUsage> uses, CancellationToken ct)
    {
        var campaign = await CampaignOperations.FindAsync(db, user.OrganizationId(), campaignId, ct);
        if (campaign is null)
        {
            return NotFound(campaignId);
        }
        if (await CampaignOperations.DeleteAsync(db, uses, campaign, ct) is { } conflict)
        {
            return Problems.Conflict(conflict.Field, conflict.Reason);
        }
        return TypedResults.NoContent();
    }

    private static Task<Campaign?> Find(PostbackDb db, long organizationId, string campaignId, CancellationToken ct) =>
        CampaignOperations.FindAsync(db, organizationId, campaignId, ct);

    private static ProblemHttpResult NotFound(string campaignId) => Problems.NotFound($"There is no campaign '{campaignId}'.");
}
