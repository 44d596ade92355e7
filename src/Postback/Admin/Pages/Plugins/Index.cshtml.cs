using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Postback.Catalog;
using Postback.Plugins;
using Postback.Storage;

namespace Postback.Admin.Pages.Plugins;

/// Seed 000, steps 1 to 6: create a plugin instance, then find it in the installed plugins table.
public sealed class IndexModel(PostbackDb db, TimeProvider time) : AdminPageModel
{
    public IReadOnlyList<PluginInstance> Instances { get; private set; } = [];
    public IReadOnlyList<Campaign> Campaigns { get; private set; } = [];

    [BindProperty] public string? Name { get; set; }
    [BindProperty] public string? Kind { get; set; } = PluginKinds.Konnektive;
    [BindProperty] public string? Secret { get; set; }
    [BindProperty] public string? CampaignId { get; set; }
    [BindProperty] public bool ImportUnknownSkus { get; set; }

    public async Task OnGetAsync(CancellationToken ct) => await LoadAsync(ct);

    public async Task<IActionResult> OnPostCreateAsync(CancellationToken ct)
    {
        var input = new PluginInstanceInput(Name, Kind, string.IsNullOrWhiteSpace(Secret) ? null : Secret.Trim(), CampaignId, ImportUnknownSkus, true);
        var (instance, errors) = await PluginInstanceOperations.CreateAsync(db, OrganizationId, input, time.GetUtcNow(), ct);
        if (instance is not null)
        {
            Flash($"Created the plugin {instance.Name}. Open it for its webhook URL and the Konnektive setup.");
            return Redirect("/admin/plugins");
        }
        AddErrors(errors);
        await LoadAsync(ct);
        return Page();
    }

    public async Task<IActionResult> OnPostDeleteAsync(long id, string? name, CancellationToken ct)
    {
        var instance = await PluginInstanceOperations.FindAsync(db, OrganizationId, id, ct);
        // The button names the row it was drawn for: a renamed or replaced instance is left alone.
        if (instance is null || instance.Name != name)
        {
            Flash("The plugin changed since this page was loaded; nothing was deleted. Check the list and try again.");
            return Redirect("/admin/plugins");
        }
        await PluginInstanceOperations.DeleteAsync(db, instance, ct);
        Flash($"Deleted the plugin {instance.Name}; its webhook URL no longer takes postbacks.");
        return Redirect("/admin/plugins");
    }

    public string CampaignName(string? campaignId) =>
        campaignId is null ? "—" : Campaigns.FirstOrDefault(c => c.CampaignId == campaignId) is { } c ? $"{c.Name} ({campaignId})" : campaignId;

    private async Task LoadAsync(CancellationToken ct)
    {
        Instances = await db.PluginInstances.AsNoTracking().Where(p => p.OrganizationId == OrganizationId).OrderBy(p => p.Id).ToListAsync(ct);
        Campaigns = await db.Campaigns.AsNoTracking().Where(c => c.OrganizationId == OrganizationId).OrderBy(c => c.CampaignId).ToListAsync(ct);
    }
}
