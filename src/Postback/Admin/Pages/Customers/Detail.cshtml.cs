using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Postback.Deliveries;
using Postback.Storage;

namespace Postback.Admin.Pages.Customers;

/// The customer's history (seed 001, "Viewing Fired Webhooks"): each fired export links to
/// its delivery, which shows exactly what was sent.
public sealed class DetailModel(PostbackDb db) : AdminPageModel
{
    public string CustomerId { get; private set; } = "";
    public IReadOnlyList<DeliveryOperations.HistoryRow> History { get; private set; } = [];
    public IReadOnlyList<long> Orders { get; private set; } = [];

    public async Task<IActionResult> OnGetAsync(string customerId, CancellationToken ct)
    {
        CustomerId = customerId;
        Orders = await db.Orders.AsNoTracking().Where(o => o.OrganizationId == OrganizationId && o.CustomerId == customerId)
            .OrderBy(o => o.OrderId).Select(o => o.OrderId).Take(200).ToListAsync(ct);
        History = await DeliveryOperations.HistoryAsync(db, OrganizationId, customerId, 500, ct);
        if (Orders.Count == 0 && History.Count == 0)
        {
            return NotFoundPage($"There is no customer {customerId}: no order and no export names them.");
        }
        return Page();
    }
}
