using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Postback.Catalog;
using Postback.Storage;

namespace Postback.Admin.Pages.Campaigns;

/// The catalog: campaigns with their products. Routing by campaign or product and linking
/// SKUs both need it, so it is filled here rather than only through the API.
public sealed class IndexModel(PostbackDb db, TimeProvider time) : AdminPageModel
{
    public IReadOnlyList<Campaign> Campaigns { get; private set; } = [];

    [BindProperty] public string? CampaignId { get; set; }
    [BindProperty] public string? Name { get; set; }

    public async Task OnGetAsync(CancellationToken ct) => await LoadAsync(ct);

    public async Task<IActionResult> OnPostCreateAsync(CancellationToken ct)
    {
        var result = await CampaignOperations.CreateAsync(db, OrganizationId, new CampaignInput(CampaignId, Name, []), time.GetUtcNow(), ct);
        if (result.Campaign is { } campaign)
        {
            Flash($"Created the campaign {campaign.Name}. Add its products below.");
            return Redirect($"/admin/campaigns/{Uri.EscapeDataString(campaign.CampaignId)}#products");
        }
        AddErrors(result.Errors);
        if (result.Conflict is { } conflict)
        {
            AddError(conflict.Field, conflict.Reason);
        }
        await LoadAsync(ct);
        return Page();
    }

    private async Task LoadAsync(CancellationToken ct) =>
        Campaigns = await db.Campaigns.AsNoTracking().Include(c => c.Products)
            .Where(c => c.OrganizationId == OrganizationId).OrderBy(c => c.CampaignId).ToListAsync(ct);
}
