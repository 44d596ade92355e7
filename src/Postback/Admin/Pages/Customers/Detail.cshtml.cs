using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Postback.Deliveries;
using Postback.Orders;
using Postback.Storage;

namespace Postback.Admin.Pages.Customers;

/// The customer's history (seed 001, "Viewing Fired Webhooks"): each fired export links to
/// its delivery, which shows exactly what was sent.
public sealed class DetailModel(PostbackDb db) : AdminPageModel
{
    public string CustomerId { get; private set; } = "";
    public IReadOnlyList<DeliveryOperations.HistoryRow> History { get; private set; } = [];
    public IReadOnlyList<long> Orders { get; private set; } = [];
    // From the customer's latest order: the name, e-mail and phone the CRM sent last.
    public string? Name { get; private set; }
    public string? Email { get; private set; }
    public string? Phone { get; private set; }

    public async Task<IActionResult> OnGetAsync(string customerId, CancellationToken ct)
    {
        CustomerId = customerId;
        Orders = await db.Orders.AsNoTracking().Where(o => o.OrganizationId == OrganizationId && o.CustomerId == customerId)
            .OrderBy(o => o.OrderId).Select(o => o.OrderId).Take(200).ToListAsync(ct);
        History = await DeliveryOperations.HistoryAsync(db, OrganizationId, customerId, 500, ct);
        var latest = await db.Orders.AsNoTracking().Where(o => o.OrganizationId == OrganizationId && o.CustomerId == customerId)
            .OrderByDescending(o => o.UpdatedAt).Select(o => o.Data).FirstOrDefaultAsync(ct);
        if (latest is not null)
        {
            var data = Postback.Orders.OrderJson.Deserialize(latest);
            Name = $"{data.Get("firstName")} {data.Get("lastName")}".Trim() is { Length: > 0 } n ? n : null;
            Email = data.Get("emailAddress");
            Phone = data.Get("phoneNumber");
        }
        if (Orders.Count == 0 && History.Count == 0)
        {
            return NotFoundPage($"There is no customer {customerId}: no order and no export names them.");
        }
        return Page();
    }
}
