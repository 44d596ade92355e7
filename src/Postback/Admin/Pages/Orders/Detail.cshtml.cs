using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Postback.Deliveries;
using Postback.Orders;
using Postback.Storage;

namespace Postback.Admin.Pages.Orders;

/// An order as last received, its events and the exports each fired. Sections for later
/// features (order confirmation) go after the exports.
public sealed class DetailModel(PostbackDb db, TimeProvider time) : AdminPageModel
{
    public StoredOrder Order { get; private set; } = null!;
    public JsonObject Data { get; private set; } = [];
    public IReadOnlyList<OrderEventView> Events { get; private set; } = [];
    public IReadOnlyList<DeliveryView> Exports { get; private set; } = [];
    public IReadOnlyDictionary<long, string> ProfileNames { get; private set; } = new Dictionary<long, string>();

    public async Task<IActionResult> OnGetAsync(long orderId, CancellationToken ct)
    {
        var row = await db.Orders.AsNoTracking().FirstOrDefaultAsync(o => o.OrganizationId == OrganizationId && o.OrderId == orderId, ct);
        if (row is null)
        {
            return NotFoundPage($"There is no order {orderId}.");
        }
        Order = row;
        Data = OrderJson.ToApi(OrderJson.Deserialize(row.Data));
        Events = await db.OrderEvents.AsNoTracking().Where(e => e.OrderKey == row.Id).OrderBy(e => e.Id)
            .Select(e => new OrderEventView(e.Id, e.EventId, e.Type, e.OccurredAt, e.ReceivedAt)).ToListAsync(ct);
        var now = time.GetUtcNow();
        var deliveries = await db.Deliveries.AsNoTracking().Where(d => d.OrganizationId == OrganizationId && d.OrderKey == row.Id)
            .OrderBy(d => d.Id).Take(500).ToListAsync(ct);
        Exports = deliveries.Select(d => DeliveryView.From(d, now)).ToList();
        ProfileNames = await db.ExportProfiles.AsNoTracking().Where(p => p.OrganizationId == OrganizationId)
            .ToDictionaryAsync(p => p.Id, p => p.Name, ct);
        return Page();
    }
}
