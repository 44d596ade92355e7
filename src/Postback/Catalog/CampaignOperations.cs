using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Postback.ExportProfiles;
using Postback.Infrastructure;
using Postback.Plugins;
using Postback.Storage;

namespace Postback.Catalog;

/// A change the catalog refuses because something still uses what it would remove.
public sealed record CatalogConflict(string Field, string Reason);

/// Errors (nothing saved), a conflict (nothing saved), or the saved campaign.
public sealed record CampaignResult(Campaign? Campaign, ValidationErrors Errors, CatalogConflict? Conflict = null);

/// What the campaigns API and the admin's catalog screens both do with campaigns: validate,
/// create, replace (name and products), delete, and refuse what would break routing or a plugin.
public static partial class CampaignOperations
{
    public const int MaxProducts = 500;

    public static Task<Campaign?> FindAsync(PostbackDb db, long organizationId, string campaignId, CancellationToken ct) =>
        db.Campaigns.Include(c => c.Products).FirstOrDefaultAsync(c => c.OrganizationId == organizationId && c.CampaignId == campaignId, ct);

    public static async Task<CampaignResult> CreateAsync(PostbackDb db, long organizationId, CampaignInput input, DateTimeOffset now, CancellationToken ct)
    {
        var errors = Validate(input, pathCampaignId: null);
        if (errors.Any)
        {
            return new CampaignResult(null, errors);
        }
        var campaignId = input.CampaignId!.Trim();
        if (await db.Campaigns.AnyAsync(c => c.OrganizationId == organizationId && c.CampaignId == campaignId, ct))
        {
            return new CampaignResult(null, errors, new CatalogConflict("campaignId", $"campaign '{campaignId}' already exists; use PUT /api/v1/campaigns/{campaignId} to change it"));
        }
        var campaign = new Campaign { OrganizationId = organizationId, CampaignId = campaignId, Name = input.Name!.Trim(), CreatedAt = now, UpdatedAt = now };
        campaign.Products = ToProducts(organizationId, input.Products);
        db.Campaigns.Add(campaign);
        await db.SaveChangesAsync(ct);
        return new CampaignResult(campaign, errors);
    }

    /// Changes a tracked campaign (loaded with its products). Nothing is written on errors.
    public static async Task<CampaignResult> ReplaceAsync(PostbackDb db, Campaign campaign, CampaignInput input, DateTimeOffset now, CancellationToken ct)
    {
        var errors = Validate(input, campaign.CampaignId);
        if (errors.Any)
        {
            return new CampaignResult(null, errors);
        }
        var kept = (input.Products ?? []).Select(p => p.ProductId!.Trim()).ToHashSet(StringComparer.Ordinal);
        var dropped = campaign.Products.Select(p => p.ProductId).Where(id => !kept.Contains(id)).ToList();
        if (await FindRoutingUseAsync(db, campaign.OrganizationId, campaign, null, dropped, ct) is { } inUse)
        {
            return new CampaignResult(null, errors, inUse);
        }
        campaign.Name = input.Name!.Trim();
        campaign.UpdatedAt = now;
        db.Products.RemoveRange(campaign.Products);
        campaign.Products = ToProducts(campaign.OrganizationId, input.Products);
        await db.SaveChangesAsync(ct);
        return new CampaignResult(campaign, errors);
    }

    /// Deletes a tracked campaign and its products, unless a route or a plugin uses it.
    public static async Task<CatalogConflict?> DeleteAsync(PostbackDb db, Campaign campaign, CancellationToken ct)
    {
        var organizationId = campaign.OrganizationId;
        if (await FindRoutingUseAsync(db, organizationId, campaign, campaign.CampaignId, campaign.Products.Select(p => p.ProductId).ToList(), ct) is { } inUse)
        {
            return inUse;
        }
        // An inbound plugin resolving SKUs against a vanished campaign would quietly leave every line unknown.
        if (await db.PluginInstances.AsNoTracking().Where(p => p.OrganizationId == organizationId && p.CampaignId == campaign.CampaignId).OrderBy(p => p.Id).FirstOrDefaultAsync(ct) is { } plugin)
        {
            return new CatalogConflict("campaignId", $"plugin instance {plugin.Id} ('{plugin.Name}') resolves SKUs with campaign '{campaign.CampaignId}'; change it first");
        }
        db.Campaigns.Remove(campaign);
        await db.SaveChangesAsync(ct);
        return null;
    }

    /// A route naming a campaign or product that no longer exists would silently stop matching
    /// (and the profile could not be saved again): make the operator change the route first.
    private static async Task<CatalogConflict?> FindRoutingUseAsync(
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
                    return new CatalogConflict("campaignId", $"export profile {profile.Id} ('{profile.Name}') routes campaign '{campaignId}'; change its routing first");
                }
                if (route.ProductIds?.FirstOrDefault(vanishing.Contains) is { } productId)
                {
                    return new CatalogConflict("products", $"export profile {profile.Id} ('{profile.Name}') routes product '{productId}'; change its routing first");
                }
            }
        }
        return null;
    }

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

    public static ValidationErrors Validate(CampaignInput input, string? pathCampaignId)
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
