using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Postback.Plugins;
using Postback.Storage;

namespace Postback.Admin.Pages.Plugins;

/// Seed 000, steps 7 and 8 (and the Konnektive side, steps 14 to 17, done for the operator):
/// the webhook URL, the Konnektive postback URL and field mapping, the secret, the settings,
/// and what the instance received.
public sealed class DetailModel(PostbackDb db, TimeProvider time, Microsoft.Extensions.Options.IOptions<Infrastructure.PostbackOptions> options) : AdminPageModel
{
    public const int LogSize = 50;

    public PluginInstance Instance { get; private set; } = null!;
    public PluginSetup Setup { get; private set; } = null!;
    public bool CrmCannotReach { get; private set; }
    public IReadOnlyList<Campaign> Campaigns { get; private set; } = [];
    public IReadOnlyList<InboundLogView> Log { get; private set; } = [];

    [BindProperty] public string? Name { get; set; }
    [BindProperty] public string? Kind { get; set; }
    [BindProperty] public string? Secret { get; set; }
    [BindProperty] public string? CampaignId { get; set; }
    [BindProperty] public bool ImportUnknownSkus { get; set; }
    [BindProperty] public bool Enabled { get; set; }

    /// The optional order fields in the generated Konnektive mapping: all, unless the operator
    /// chose (?choose=1&fields=a&fields=b); the fields that address the postback stay always.
    public IReadOnlySet<string>? ChosenFields { get; private set; }

    public bool Includes(string field) => ChosenFields is null || ChosenFields.Contains(field);

    public async Task<IActionResult> OnGetAsync(long id, [FromQuery] string? choose, [FromQuery] string[]? fields, CancellationToken ct)
    {
        if (choose is not null)
        {
            ChosenFields = (fields ?? []).Where(f => PluginInstancesApi.KonnektiveOptionalFields.Contains(f, StringComparer.Ordinal)).ToHashSet(StringComparer.Ordinal);
        }
        if (!await LoadAsync(id, ct))
        {
            return NotFoundPage($"There is no plugin {id}.");
        }
        Fill();
        return Page();
    }

    public async Task<IActionResult> OnPostUpdateAsync(long id, CancellationToken ct)
    {
        if (!await LoadAsync(id, ct))
        {
            return NotFoundPage($"There is no plugin {id}.");
        }
        // A blank secret keeps the current one, as in the API.
        var input = new PluginInstanceInput(Name, Kind, string.IsNullOrWhiteSpace(Secret) ? null : Secret.Trim(), CampaignId, ImportUnknownSkus, Enabled);
        var errors = await PluginInstanceOperations.ReplaceAsync(db, Instance, input, time.GetUtcNow(), ct);
        if (!errors.Any)
        {
            Flash($"Updated the plugin {Instance.Name}.");
            return Redirect($"/admin/plugins/{id}#edit");
        }
        AddErrors(errors);
        // Nothing was saved: show what is stored, next to the operator's input.
        await db.Entry(Instance).ReloadAsync(ct);
        Setup = PluginInstancesApi.Setup(Instance, PluginInstancesApi.BaseUrl(HttpContext, options.Value));
        return Page();
    }

    public async Task<IActionResult> OnPostDeleteAsync(long id, CancellationToken ct)
    {
        if (!await LoadAsync(id, ct))
        {
            return NotFoundPage($"There is no plugin {id}.");
        }
        await PluginInstanceOperations.DeleteAsync(db, Instance, ct);
        Flash($"Deleted the plugin {Instance.Name}; its webhook URL no longer takes postbacks.");
        return Redirect("/admin/plugins");
    }

    private async Task<bool> LoadAsync(long id, CancellationToken ct)
    {
        var instance = await PluginInstanceOperations.FindAsync(db, OrganizationId, id, ct);
        if (instance is null)
        {
            return false;
        }
        Instance = instance;
        var baseUrl = PluginInstancesApi.BaseUrl(HttpContext, options.Value);
        Setup = PluginInstancesApi.Setup(instance, baseUrl, ChosenFields);
        CrmCannotReach = PluginInstancesApi.CrmCannotReach(baseUrl, options.Value);
        Campaigns = await db.Campaigns.AsNoTracking().Where(c => c.OrganizationId == OrganizationId).OrderBy(c => c.CampaignId).ToListAsync(ct);
        Log = await PluginInstanceOperations.LogPageAsync(
            db.InboundLog.Where(e => e.OrganizationId == OrganizationId && e.PluginInstanceId == id), LogSize, null, ct);
        return true;
    }

    private void Fill()
    {
        Name = Instance.Name;
        Kind = Instance.Kind;
        CampaignId = Instance.CampaignId;
        ImportUnknownSkus = Instance.ImportUnknownSkus;
        Enabled = Instance.Enabled;
    }
}
