using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Postback.Catalog;
using Postback.Plugins;
using Postback.Storage;

namespace Postback.Admin.Pages.Skus;

/// SKUs the CRMs sent that no campaign product carries (seed 000, "Import Non-Existing SKUs"):
/// link each to a product, which also resolves the stored order lines that carry it.
public sealed class IndexModel(PostbackDb db, ISkuStore skus) : AdminPageModel
{
    public IReadOnlyList<ImportedSku> Unlinked { get; private set; } = [];
    public IReadOnlyList<ImportedSku> Linked { get; private set; } = [];
    public IReadOnlyList<Campaign> Campaigns { get; private set; } = [];
    public IReadOnlyDictionary<long, string> PluginNames { get; private set; } = new Dictionary<long, string>();

    // The SKU whose link form was posted (its errors show in its row), and the product picked.
    [BindProperty] public string? Sku { get; set; }
    [BindProperty] public string? ProductId { get; set; }

    public async Task OnGetAsync(CancellationToken ct) => await LoadAsync(ct);

    public async Task<IActionResult> OnPostLinkAsync(CancellationToken ct)
    {
        var result = await SkuOperations.LinkAsync(db, skus, OrganizationId, Sku ?? "", ProductId, ct);
        if (result.Sku is { } linked)
        {
            Flash($"Linked the SKU {linked.Sku} to the product {linked.ProductId}: {Count(result.ResolvedLines, "order line")} in {Count(result.ResolvedOrders, "order")} resolved{(result.Complete ? "" : "; the rest are being resolved in the background")}.");
            return Redirect("/admin/skus");
        }
        AddErrors(result.Errors);
        await LoadAsync(ct);
        return Page();
    }

    public bool IsPosted(string sku) => Sku is not null && Sku.Trim() == sku;

    public string ProductLabel(string? productId)
    {
        foreach (var c in Campaigns)
        {
            if (c.Products.FirstOrDefault(p => p.ProductId == productId) is { } p)
            {
                return $"{p.Name} ({p.ProductId}, {c.Name})";
            }
        }
        return productId ?? "";
    }

    private static string Count(int n, string what) => n == 1 ? $"1 {what}" : $"{n} {what}s";

    private async Task LoadAsync(CancellationToken ct)
    {
        var all = await SkuOperations.ListAsync(db, OrganizationId, null, ct);
        Unlinked = all.Where(s => s.ProductId is null).ToList();
        Linked = all.Where(s => s.ProductId is not null).OrderByDescending(s => s.LinkedAt).ToList();
        Campaigns = await db.Campaigns.AsNoTracking().Include(c => c.Products)
            .Where(c => c.OrganizationId == OrganizationId).OrderBy(c => c.CampaignId).ToListAsync(ct);
        PluginNames = await db.PluginInstances.AsNoTracking().Where(p => p.OrganizationId == OrganizationId)
            .ToDictionaryAsync(p => p.Id, p => p.Name, ct);
    }
}
