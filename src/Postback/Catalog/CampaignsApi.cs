using System.Security.Claims;
using System.Text.RegularExpressions;
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

internal static partial class CampaignsApi
{
    public const int MaxProducts = 500;

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
        var errors = Validate(input, pathCampaignId: null);
        if (errors.Any)
        {
            return Problems.Validation(errors);
        }
        var organizationId = user.OrganizationId();
        var campaignId = input.CampaignId!.Trim();
        if (await db.Campaigns.AnyAsync(c => c.OrganizationId == organizationId && c.CampaignId == campaignId, ct))
        {
            return Problems.Conflict("campaignId", $"campaign '{campaignId}' already exists; use PUT /api/v1/campaigns/{campaignId} to change it");
        }
        var now = time.GetUtcNow();
        var campaign = new Campaign { OrganizationId = organizationId, CampaignId = campaignId, Name = input.Name!.Trim(), CreatedAt = now, UpdatedAt = now };
        campaign.Products = ToProducts(organizationId, input.Products);
        db.Campaigns.Add(campaign);
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/v1/campaigns/{campaignId}", CampaignView.From(campaign));
    }

    private static async Task<Results<Ok<CampaignView>, ValidationProblem, ProblemHttpResult>> Replace(
        string campaignId, CampaignInput input, ClaimsPrincipal user, PostbackDb db, TimeProvider time, CancellationToken ct)
    {
        var errors = Validate(input, campaignId);
        if (errors.Any)
        {
            return Problems.Validation(errors);
        }
        var organizationId = user.OrganizationId();
        var campaign = await Find(db, organizationId, campaignId, ct);
        if (campaign is null)
        {
            return NotFound(campaignId);
        }
        var kept = (input.Products ?? []).Select(p => p.ProductId!.Trim()).ToHashSet(StringComparer.Ordinal);
        var dropped = campaign.Products.Select(p => p.ProductId).Where(id => !kept.Contains(id)).ToList();
        if (await FindRoutingUseAsync(db, organizationId, campaign, null, dropped, ct) is { } inUse)
        {
            return inUse;
        }
        campaign.Name = input.Name!.Trim();
        campaign.UpdatedAt = time.GetUtcNow();
        db.Products.RemoveRange(campaign.Products);
        campaign.Products = ToProducts(organizationId, input.Products);
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(CampaignView.From(campaign));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> Delete(string campaignId, ClaimsPrincipal user, PostbackDb db, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        var campaign = await Find(db, organizationId, campaignId, ct);
        if (campaign is null)
        {
            return NotFound(campaignId);
        }
        if (await FindRoutingUseAsync(db, organizationId, campaign, campaign.CampaignId, campaign.Products.Select(p => p.ProductId).ToList(), ct) is { } inUse)
        {
            return inUse;
        }
        // An inbound plugin resolving SKUs against a vanished campaign would quietly leave every line unknown.
        if (await db.PluginInstances.AsNoTracking().Where(p => p.OrganizationId == organizationId && p.CampaignId == campaign.CampaignId).OrderBy(p => p.Id).FirstOrDefaultAsync(ct) is { } plugin)
        {
            return Problems.Conflict("campaignId", $"plugin instance {plugin.Id} ('{plugin.Name}') resolves SKUs with campaign '{campaign.CampaignId}'; change it first");
        }
        db.Campaigns.Remove(campaign);
        await db.SaveChangesAsync(ct);
        return TypedResults.NoContent();
    }

    /// A route naming a campaign or product that no longer exists would silently stop matching
    /// (and the profile could not be saved again): make the operator change the route first.
    private static async Task<ProblemHttpResult?> FindRoutingUseAsync(
        PostbackDb db, long organizationId, Campaign campaign, string? campaignId, IReadOnlyList<string> productIds, CancellationToken ct)
    {
        // A product id that another campaign also holds stays routable.
        var elsewhere = productIds.Count == 0 ? [] : (await db.Products.AsNoTracking()
            .Where(p => p.OrganizationId == organizationId && p.CampaignKey != campaign.Id && productIds.Contains(p.ProductId))
            .Select(p => p.ProductId).ToListAsync(ct)).ToHashSet(StringComparer.Ordinal);
        var vanishing = productIds.Where(p => !elsewhere.Contains(p)).ToHashSet(StringComparer.Ordinal);
        if (campaignId is null && vanishing.Count == 0)
        {
            return null;
        }
        var profiles = await db.ExportProfiles.AsNoTracking().Where(p => p.OrganizationId == organizationId).OrderBy(p => p.Id).ToListAsync(ct);
        foreach (var profile in profiles)
        {
            foreach (var route in profile.Routes)
            {
                if (campaignId is not null && route.CampaignIds?.Contains(campaignId) == true)
                {
                    return Problems.Conflict("campaignId", $"export profile {profile.Id} ('{profile.Name}') routes campaign '{campaignId}'; change its routing first");
                }
                if (route.ProductIds?.FirstOrDefault(vanishing.Contains) is { } productId)
                {
                    return Problems.Conflict("products", $"export profile {profile.Id} ('{profile.Name}') routes product '{productId}'; change its routing first");
                }
            }
        }
        return null;
    }

    private static Task<Campaign?> Find(PostbackDb db, long organizationId, string campaignId, CancellationToken ct) =>
        db.Campaigns.Include(c => c.Products).FirstOrDefaultAsync(c => c.OrganizationId == organizationId && c.CampaignId == campaignId, ct);

    private static ProblemHttpResult NotFound(string campaignId) => Problems.NotFound($"There is no campaign '{campaignId}'.");

    private static List<Product> ToProducts(long organizationId, IReadOnlyList<ProductInput>? products) =>
        (products ?? []).Select(p => new Product
        {
            OrganizationId = organizationId,
            ProductId = p.ProductId!.Trim(),
            Sku = string.IsNullOrWhiteSpace(p.Sku) ? null : p.Sku.Trim(),
            Name = string.IsNullOrWhiteSpace(p.Name) ? (p.Sku ?? p.ProductId!).Trim() : p.Name.Trim(),
            Price = p.Price,
            Recurring = p.Recurring,
        }).ToList();

    internal static ValidationErrors Validate(CampaignInput input, string? pathCampaignId)
    {
        var errors = new ValidationErrors();
        if (pathCampaignId is not null)
        {
            if (input.CampaignId is not null && input.CampaignId.Trim() != pathCampaignId)
            {
                errors.Add("campaignId", $"must match the campaign in the URL ('{pathCampaignId}'); a campaign's id cannot change");
            }
        }
        else
        {
            CheckId(errors, "campaignId", input.CampaignId);
        }
        CheckText(errors, "name", input.Name, 200, required: true);

        var products = input.Products ?? [];
        if (products.Count > MaxProducts)
        {
            errors.Add("products", $"a campaign holds at most {MaxProducts} products");
            return errors;
        }
        var productIds = new Dictionary<string, int>(StringComparer.Ordinal);
        var skus = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < products.Count; i++)
        {
            var p = products[i];
            var path = $"products[{i}]";
            if (p is null)
            {
                errors.Add(path, "must be an object");
                continue;
            }
            if (CheckId(errors, path + ".productId", p.ProductId) && !productIds.TryAdd(p.ProductId!.Trim(), i))
            {
                errors.Add(path + ".productId", $"repeats products[{productIds[p.ProductId!.Trim()]}].productId");
            }
            if (CheckText(errors, path + ".sku", p.Sku, 64, required: false) && !string.IsNullOrWhiteSpace(p.Sku) && !skus.TryAdd(p.Sku.Trim(), i))
            {
                errors.Add(path + ".sku", $"repeats products[{skus[p.Sku.Trim()]}].sku");
            }
            CheckText(errors, path + ".name", p.Name, 255, required: false);
            if (p.Price is < 0 or >= 1_000_000_000m)
            {
                errors.Add(path + ".price", "must be from 0 to 999999999.99");
            }
        }
        return errors;
    }

    private static bool CheckId(ValidationErrors errors, string field, string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            errors.Add(field, "is required");
            return false;
        }
        if (!IdPattern().IsMatch(value.Trim()))
        {
            errors.Add(field, "must be 1 to 64 letters, digits, '.', '_' or '-'");
            return false;
        }
        return true;
    }

    private static bool CheckText(ValidationErrors errors, string field, string? value, int max, bool required)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            if (required)
            {
                errors.Add(field, "is required");
                return false;
            }
            return true;
        }
        if (value.Trim().Length > max)
        {
            errors.Add(field, $"must be at most {max} characters");
            return false;
        }
        if (value.Any(char.IsControl))
        {
            errors.Add(field, "must not contain control characters");
            return false;
        }
        return true;
    }

    [GeneratedRegex("^[A-Za-z0-9._-]{1,64}$")]
    private static partial Regex IdPattern();
}
