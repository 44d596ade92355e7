using Microsoft.EntityFrameworkCore;
using Postback.Catalog;
using Postback.Storage;

namespace Postback.Plugins;

/// An inbound plugin resolving SKUs against a vanished campaign would quietly leave every line
/// unknown: the operator changes the plugin instance first.
internal sealed class PluginCampaignUsage : ICampaignUsage
{
    public async Task<CatalogConflict?> FindAsync(
        PostbackDb db, long organizationId, string? campaignId, IReadOnlySet<string> products, CancellationToken ct)
    {
        if (campaignId is null)
        {
            return null;
        }
        var plugin = await db.PluginInstances.AsNoTracking()
            .Where(p => p.OrganizationId == organizationId && p.CampaignId == campaignId).OrderBy(p => p.Id).FirstOrDefaultAsync(ct);
        return plugin is null ? null
            : new CatalogConflict("campaignId", $"plugin instance {plugin.Id} ('{plugin.Name}') resolves SKUs with campaign '{campaignId}'; change it first");
    }
}
