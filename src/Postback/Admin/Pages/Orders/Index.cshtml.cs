using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Postback.Storage;

namespace Postback.Admin.Pages.Orders;

public sealed class IndexModel(PostbackDb db) : AdminPageModel
{
    public sealed record Row(long OrderId, string? CustomerId, string? CampaignId, DateTimeOffset UpdatedAt);

    [BindProperty(SupportsGet = true)] public string? Find { get; set; }

    public IReadOnlyList<Row> Recent { get; private set; } = [];

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        if (!string.IsNullOrWhiteSpace(Find))
        {
            var text = Find.Trim();
            if (long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var orderId)
                && await db.Orders.AsNoTracking().AnyAsync(o => o.OrganizationId == OrganizationId && o.OrderId == orderId, ct))
            {
                return Redirect($"/admin/orders/{orderId}");
            }
            if (await db.Orders.AsNoTracking().AnyAsync(o => o.OrganizationId == OrganizationId && o.CustomerId == text, ct))
            {
                return Redirect($"/admin/customers/{Uri.EscapeDataString(text)}");
            }
            AddError("find", $"No order or customer {text}.");
        }
        Recent = await db.Orders.AsNoTracking().Where(o => o.OrganizationId == OrganizationId)
            .OrderByDescending(o => o.UpdatedAt).Take(50)
            .Select(o => new Row(o.OrderId, o.CustomerId, o.CampaignId, o.UpdatedAt)).ToListAsync(ct);
        return Page();
    }
}
