using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Postback.Catalog;
using Postback.ExportProfiles;
using Postback.Plugins;
using Postback.Storage;

namespace Postback.Admin.Pages.Campaigns;

/// One campaign: its name and its products, edited in place (a blank row adds a product,
/// "Remove" drops one), with the API's validation shown next to each input; and Delete.
public sealed partial class EditModel(PostbackDb db, TimeProvider time) : AdminPageModel
{
    // Blank rows under the products, for adding.
    public const int BlankRows = 3;

    public sealed class ProductRow
    {
        public string? ProductId { get; set; }
        public string? Sku { get; set; }
        public string? Name { get; set; }
        public string? Price { get; set; }
        public bool Recurring { get; set; }
        public bool Remove { get; set; }

        public bool IsBlank => string.IsNullOrWhiteSpace(ProductId) && string.IsNullOrWhiteSpace(Sku)
            && string.IsNullOrWhiteSpace(Name) && string.IsNullOrWhiteSpace(Price) && !Recurring;
    }

    public Campaign Campaign { get; private set; } = null!;
    public IReadOnlyList<string> UsedBy { get; private set; } = [];

    [BindProperty] public string? Name { get; set; }
    [BindProperty] public List<ProductRow> Products { get; set; } = [];

    public async Task<IActionResult> OnGetAsync(string campaignId, CancellationToken ct)
    {
        if (!await LoadAsync(campaignId, ct))
        {
            return NotFoundPage($"There is no campaign {campaignId}.");
        }
        Name = Campaign.Name;
        Products = Campaign.Products.OrderBy(p => p.Id).Select(p => new ProductRow
        {
            ProductId = p.ProductId,
            Sku = p.Sku,
            Name = p.Name,
            Price = p.Price?.ToString("0.00##", CultureInfo.InvariantCulture),
            Recurring = p.Recurring,
        }).ToList();
        AddBlankRows();
        return Page();
    }

    public async Task<IActionResult> OnPostSaveAsync(string campaignId, CancellationToken ct)
    {
        if (!await LoadAsync(campaignId, ct))
        {
            return NotFoundPage($"There is no campaign {campaignId}.");
        }
        // Row index on the page for each product sent, so an error lands next to its input.
        var rows = new List<int>();
        var products = new List<ProductInput>();
        for (var row = 0; row < Products.Count; row++)
        {
            var p = Products[row];
            if (p.Remove || p.IsBlank)
            {
                continue;
            }
            decimal? price = null;
            if (!string.IsNullOrWhiteSpace(p.Price))
            {
                if (decimal.TryParse(p.Price.Trim(), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var parsed))
                {
                    price = parsed;
                }
                else
                {
                    AddError($"products[{row}].price", "must be an amount such as 4.95");
                }
            }
            rows.Add(row);
            products.Add(new ProductInput(p.ProductId, p.Sku, p.Name, price, p.Recurring));
        }
        if (!HasErrors)
        {
            var result = await CampaignOperations.ReplaceAsync(db, Campaign, new CampaignInput(null, Name, products), time.GetUtcNow(), ct);
            if (result.Campaign is not null)
            {
                Flash($"Saved the campaign {Campaign.Name} with {products.Count} product(s).");
                return Redirect($"/admin/campaigns/{Uri.EscapeDataString(campaignId)}#products");
            }
            AddErrors(result.Errors, field => RowPath().Replace(field, m => $"products[{rows[int.Parse(m.Groups[1].ValueSpan, CultureInfo.InvariantCulture)]}]"));
            if (result.Conflict is { } conflict)
            {
                AddError(conflict.Field, conflict.Reason);
            }
        }
        AddBlankRows();
        return Page();
    }

    public async Task<IActionResult> OnPostDeleteAsync(string campaignId, CancellationToken ct)
    {
        if (!await LoadAsync(campaignId, ct))
        {
            return NotFoundPage($"There is no campaign {campaignId}.");
        }
        if (await CampaignOperations.DeleteAsync(db, Campaign, ct) is { } conflict)
        {
            Flash($"The campaign {Campaign.Name} was not deleted: {conflict.Reason}.");
            return Redirect($"/admin/campaigns/{Uri.EscapeDataString(campaignId)}");
        }
        Flash($"Deleted the campaign {Campaign.Name} and its products.");
        return Redirect("/admin/campaigns");
    }

    public string? RowError(int row, string field) => Error($"products[{row}].{field}");

    // Errors no input shows (a conflict with a route, too many products): listed in the banner.
    public IEnumerable<string> UnplacedErrors() => OtherErrors(
        Products.SelectMany((_, i) => RowFields.Select(f => $"products[{i}].{f}")).Append("name").ToArray());

    public static readonly IReadOnlyList<string> RowFields = ["productId", "sku", "name", "price"];

    private void AddBlankRows()
    {
        for (var i = 0; i < BlankRows; i++)
        {
            Products.Add(new ProductRow());
        }
    }

    private async Task<bool> LoadAsync(string campaignId, CancellationToken ct)
    {
        var campaign = await CampaignOperations.FindAsync(db, OrganizationId, campaignId, ct);
        if (campaign is null)
        {
            return false;
        }
        Campaign = campaign;
        // Where it is used, so the operator knows before changing it.
        var profiles = await db.ExportProfiles.AsNoTracking().Where(p => p.OrganizationId == OrganizationId).OrderBy(p => p.Id).ToListAsync(ct);
        var productIds = campaign.Products.Select(p => p.ProductId).ToHashSet(StringComparer.Ordinal);
        var used = profiles
            .Where(p => p.Routes.Any(r => r.CampaignIds?.Contains(campaignId) == true || r.ProductIds?.Any(productIds.Contains) == true))
            .Select(p => $"export profile {p.Name}").ToList();
        used.AddRange(await db.PluginInstances.AsNoTracking()
            .Where(p => p.OrganizationId == OrganizationId && p.CampaignId == campaignId).OrderBy(p => p.Id)
            .Select(p => "plugin " + p.Name).ToListAsync(ct));
        UsedBy = used;
        return true;
    }

    [GeneratedRegex(@"^products\[(\d+)\]")]
    private static partial Regex RowPath();
}
