using Microsoft.EntityFrameworkCore;
using Postback.Catalog;
using Postback.Storage;

namespace Postback.ExportProfiles;

/// A route naming a campaign or product that no longer exists would silently stop matching
/// (and the profile could not be saved again): the operator changes the route first.
internal sealed class ProfileCampaignUsage : ICampaignUsage
{
    public async Task<CatalogConflict?> FindAsync(
        PostbackDb db, long organizationId, string? campaignId, IReadOnlySet<string> products, CancellationToken ct)
    {
        var profiles = await db.ExportProfiles.AsNoTracking().Where(p => p.OrganizationId == organizationId).OrderBy(p => p.Id).ToListAsync(ct);
        foreach (var profile in profiles)
        {
            foreach (var route in profile.Routes)
            {
                if (campaignId is not null && route.CampaignIds?.Contains(campaignId) == true)
                {
                    return new CatalogConflict("campaignId", $"export profile {profile.Id} ('{profile.Name}') routes campaign '{campaignId}'; change its routing first");
                }
                if (route.ProductIds?.FirstOrDefault(products.Contains) is { } productId)
                {
                    return new CatalogConflict("products", $"export profile {profile.Id} ('{profile.Name}') routes product '{productId}'; change its routing first");
                }
            }
        }
        return null;
    }
}
