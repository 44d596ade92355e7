using Postback.Storage;

namespace Postback.Catalog;

/// Something outside the catalog that names campaigns or products (an export profile's routes,
/// an inbound plugin's SKU resolution), asked before the catalog removes them. ExportProfiles
/// and Plugins implement it and register it, so the catalog depends on neither; the uses are
/// asked in the order the hub registers them (Program.cs: profiles, then plugins) and the first
/// one found is the conflict answered.
public interface ICampaignUsage
{
    /// The first use of campaign `campaignId` (null when the campaign stays) or of one of
    /// `products` (product ids no campaign of the organization will hold any more).
    Task<CatalogConflict?> FindAsync(PostbackDb db, long organizationId, string? campaignId, IReadOnlySet<string> products, CancellationToken ct);
}
