using Microsoft.EntityFrameworkCore;
using Postback.Storage;

namespace Postback.Orders;

public sealed record IncomingEvent(string? EventId, string Type, DateTimeOffset? OccurredAt, OrderData Order);

public sealed record IngestedEvent(OrderEvent Event, OrderData Order, bool Duplicate);

/// An event id was sent again with another type or order: not a retry of the same event, so
/// answering "duplicate" would hide a client bug.
public sealed class EventIdConflictException(int index, OrderEvent existing)
    : Exception($"eventId '{existing.EventId}' was already used for a {existing.Type} event of order {existing.OrderId}")
{
    public int Index { get; } = index;
}

/// Stores order events: upserts each event's order and records the event, all events of one
/// call in one transaction. An event id seen before is not stored again (idempotent ingest).
public sealed class EventIngest(PostbackDb db, TimeProvider time)
{
    public async Task<IReadOnlyList<IngestedEvent>> IngestAsync(long organizationId, IReadOnlyList<IncomingEvent> events, CancellationToken ct)
    {
        // A concurrent request may store the same event id or create the same order between our
        // read and our write; the unique indexes refuse it, and the second pass sees their rows.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await IngestOnceAsync(organizationId, events, ct);
            }
            catch (DbUpdateException) when (attempt < 3)
            {
                db.ChangeTracker.Clear();
            }
        }
    }

    private async Task<IReadOnlyList<IngestedEvent>> IngestOnceAsync(long organizationId, IReadOnlyList<IncomingEvent> events, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var givenIds = events.Where(e => e.EventId is not null).Select(e => e.EventId!).Distinct().ToList();
        var seen = givenIds.Count == 0
            ? []
            : await db.OrderEvents.AsNoTracking()
                .Where(e => e.OrganizationId == organizationId && givenIds.Contains(e.EventId))
                .ToDictionaryAsync(e => e.EventId, ct);

        var orderIds = events.Select(e => e.Order.OrderId).Distinct().ToList();
        var orders = await db.Orders
            .Where(o => o.OrganizationId == organizationId && orderIds.Contains(o.OrderId))
            .ToDictionaryAsync(o => o.OrderId, ct);
        var merged = orders.ToDictionary(o => o.Key, o => OrderJson.Deserialize(o.Value.Data));

        var results = new List<IngestedEvent>(events.Count);
        for (var index = 0; index < events.Count; index++)
        {
            var incoming = events[index];
            if (incoming.EventId is not null && seen.TryGetValue(incoming.EventId, out var existing))
            {
                if (existing.Type != incoming.Type || existing.OrderId != incoming.Order.OrderId)
                {
                    throw new EventIdConflictException(index, existing);
                }
                results.Add(new IngestedEvent(existing, merged.GetValueOrDefault(existing.OrderId) ?? incoming.Order, Duplicate: true));
                continue;
            }

            var orderId = incoming.Order.OrderId;
            var data = merged.TryGetValue(orderId, out var stored) ? OrderJson.Merge(stored, incoming.Order) : incoming.Order;
            merged[orderId] = data;
            if (!orders.TryGetValue(orderId, out var row))
            {
                row = new StoredOrder { OrganizationId = organizationId, OrderId = orderId, Data = "", CreatedAt = now };
                orders[orderId] = row;
                db.Orders.Add(row);
            }
            row.Data = OrderJson.Serialize(data);
            row.CustomerId = data.CustomerId;
            row.CampaignId = data.CampaignId;
            row.IsTestCard = data.IsTestCard;
            row.UpdatedAt = now;

            var orderEvent = new OrderEvent
            {
                OrganizationId = organizationId,
                EventId = incoming.EventId ?? "evt_" + Guid.CreateVersion7().ToString("N"),
                Type = incoming.Type,
                Order = row,
                OrderId = orderId,
                OccurredAt = incoming.OccurredAt ?? now,
                ReceivedAt = now,
            };
            db.OrderEvents.Add(orderEvent);
            seen[orderEvent.EventId] = orderEvent;
            results.Add(new IngestedEvent(orderEvent, data, Duplicate: false));
        }

        await db.SaveChangesAsync(ct);
        return results;
    }
}
