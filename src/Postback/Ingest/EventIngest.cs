using Microsoft.EntityFrameworkCore;
using Postback.Catalog;
using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.Orders;
using Postback.Outbound;
using Postback.Storage;

namespace Postback.Ingest;

/// Stores order events: upserts each event's order, records the event and schedules one
/// delivery per export profile it fires — all events of one call in one transaction, so there
/// is never an event without its deliveries nor a delivery without its event. An event id
/// seen before is not stored again (idempotent ingest).
public sealed class EventIngest(PostbackDb db, TimeProvider time, DeliverySignal signal, IIngestStore store)
{
    /// What an inbound postback adds (IncomingEvent.Inbound) is stored in the same transaction
    /// as the events; it is staged again on a retry, after the change tracker was cleared.
    public async Task<IReadOnlyList<IngestedEvent>> IngestAsync(long organizationId, IReadOnlyList<IncomingEvent> events, CancellationToken ct)
    {
        // A concurrent writer (another process) may store the same event id, create the same
        // order, or update it between our read and our write; the unique indexes and the
        // order's version refuse it, and the next pass reads their rows and merges again.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var (results, toClaim) = await IngestOnceAsync(organizationId, events, ct);
                if (toClaim)
                {
                    signal.Notify();
                }
                return results;
            }
            catch (DbUpdateException) when (attempt < 5)
            {
                db.ChangeTracker.Clear();
            }
        }
    }

    // Returns the results, and whether any new delivery is left for the worker's claim (one
    // not handed over to it).
    private async Task<(IReadOnlyList<IngestedEvent> Results, bool ToClaim)> IngestOnceAsync(
        long organizationId, IReadOnlyList<IncomingEvent> events, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var keys = new IngestKeys(
            events.Where(e => e.EventId is not null).Select(e => e.EventId!).Distinct().ToList(),
            events.Select(e => e.Order.OrderId).Distinct().ToList(),
            events.SelectMany(e => e.Order.Items).Where(i => i.ProductId is not null).Select(i => i.ProductId!).Distinct().ToList(),
            events.Where(e => e.Order.CampaignId is not null).Select(e => e.Order.CampaignId!).Distinct().ToList());
        var (seen, orders, profiles, recurring, campaignNames) = await store.ReadAsync(db, organizationId, keys, ct);
        var merged = orders.ToDictionary(o => o.Key, o => OrderJson.Deserialize(o.Value.Data));

        var results = new List<IngestedEvent>(events.Count);
        var newDeliveries = new List<(int Result, Delivery Delivery, ExportProfile Profile)>();
        var touched = new List<StoredOrder>();
        var touchedSet = new HashSet<StoredOrder>(ReferenceEqualityComparer.Instance);
        var newEvents = new List<OrderEvent>();
        for (var index = 0; index < events.Count; index++)
        {
            var incoming = events[index];
            if (incoming.EventId is not null && seen.TryGetValue(incoming.EventId, out var existing))
            {
                if (existing.Type != incoming.Type || existing.OrderId != incoming.Order.OrderId)
                {
                    throw new EventIdConflictException(index, existing);
                }
                results.Add(new IngestedEvent(existing, Duplicate: true, existing.Id == 0 ? [] : await ScheduledForAsync(existing.Id, ct)));
                continue;
            }

            var orderId = incoming.Order.OrderId;
            var data = merged.TryGetValue(orderId, out var stored) ? OrderJson.Merge(stored, incoming.Order) : incoming.Order;
            merged[orderId] = data;
            if (!orders.TryGetValue(orderId, out var row))
            {
                // New rows are handed to the store, not added to the context: SQLite's writer
                // needs no change tracking, which cost about a seventh of the hub's CPU.
                row = new StoredOrder { OrganizationId = organizationId, OrderId = orderId, Data = "", CreatedAt = now };
                orders[orderId] = row;
            }
            if (touchedSet.Add(row))
            {
                touched.Add(row);
            }
            row.Data = OrderJson.Serialize(data);
            row.Version++;
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
            newEvents.Add(orderEvent);
            seen[orderEvent.EventId] = orderEvent;

            foreach (var (profile, customerType, dueAt) in Scheduling.For(profiles, incoming.Type, data, orderEvent.OccurredAt, recurring.Contains))
            {
                var delivery = new Delivery
                {
                    OrganizationId = organizationId,
                    ProfileId = profile.Id,
                    Event = orderEvent,
                    Order = row,
                    OrderId = orderId,
                    CustomerId = data.CustomerId,
                    CustomerType = customerType,
                    Endpoint = Endpoints.Of(profile.PostbackUrl),
                    Ordered = profile.Ordering == ProfileOrdering.PerOrder,
                    DueAt = dueAt,
                    FirstDueAt = dueAt,
                    CreatedAt = now,
                    TraceParent = incoming.TraceParent ?? Infrastructure.PostbackTracing.CurrentContext(),
                };
                newDeliveries.Add((results.Count, delivery, profile));
            }
            results.Add(new IngestedEvent(orderEvent, Duplicate: false, []));
        }

        var importedSkus = new HashSet<string>(StringComparer.Ordinal);
        for (var index = 0; index < events.Count; index++)
        {
            if (events[index].Inbound is { } inbound)
            {
                var imported = await store.StageInboundAsync(db, organizationId, inbound, results[index], importedSkus, ct);
                results[index] = results[index] with { ImportedSkus = imported };
            }
        }
        var handed = LeaseForHandOver(newDeliveries, now);
        try
        {
            await store.SaveAsync(db, touched, newEvents, newDeliveries.Select(d => d.Delivery).ToList(), ct);
        }
        catch
        {
            signal.Unreserve(handed.Count);
            throw;
        }
        if (handed.Count > 0)
        {
            // The worker gets the orders as stored (the last event's merge), as its claim would
            // have read them, the profiles they were routed by and the names of their campaigns,
            // all read a moment ago: it sends without reading again.
            var handedOrders = new Dictionary<long, OrderData>();
            foreach (var delivery in handed)
            {
                if (!handedOrders.ContainsKey(delivery.OrderKey))
                {
                    handedOrders[delivery.OrderKey] = OrderJson.Deserialize(delivery.Order!.Data);
                }
            }
            var handedProfiles = newDeliveries.Select(d => d.Profile).DistinctBy(p => p.Id).ToDictionary(p => p.Id);
            // A campaign id that only the stored order had was not looked up: the worker reads the names.
            var looked = keys.CampaignIds.ToHashSet(StringComparer.Ordinal);
            var handedNames = handedOrders.Values.All(o => o.CampaignId is null || looked.Contains(o.CampaignId))
                ? campaignNames.ToDictionary(n => (organizationId, n.Key), n => n.Value)
                : null;
            signal.HandOver(handed.Select(d => new ClaimedDelivery(
                d.Id, d.OrganizationId, d.ProfileId, d.OrderKey, d.OrderId, d.CustomerId, d.CustomerType, d.Endpoint, d.Attempts,
                d.FirstDueAt, d.TraceParent, d.EventKey, d.Ordered)).ToList(), handed.Count, new HandOverContext(handedOrders, handedProfiles, handedNames));
        }

        // Ids exist only after the save.
        foreach (var group in newDeliveries.GroupBy(d => d.Result))
        {
            results[group.Key] = results[group.Key] with
            {
                Deliveries = group.Select(d => new ScheduledDelivery(d.Delivery.Id, d.Profile.Id, d.Profile.Name, d.Delivery.CustomerType, d.Delivery.DueAt, d.Delivery.Status)).ToList(),
            };
        }
        return (results, newDeliveries.Count > handed.Count);
    }

    // The new deliveries the worker in this process can send at once, stored already leased to
    // it (DeliverySignal): due now, for a receiver it is not holding back, and neither in order
    // per order nor coalesced (the claim decides those, against the other rows of the order).
    private List<Delivery> LeaseForHandOver(List<(int Result, Delivery Delivery, ExportProfile Profile)> deliveries, DateTimeOffset now)
    {
        var due = deliveries.Where(d => d.Delivery.DueAt <= now && !d.Delivery.Ordered && !d.Profile.Coalesce).ToList();
        if (due.Count == 0)
        {
            return [];
        }
        var held = signal.Held(now);
        if (held.Count > 0)
        {
            due.RemoveAll(d => held.Contains(d.Delivery.Endpoint));
        }
        var granted = signal.Reserve(due.Count);
        if (granted == 0)
        {
            return [];
        }
        // From now, not from the ingest's start: the lookups and the gate took time.
        var lease = signal.LeaseFrom(time.GetUtcNow());
        var handed = due.Take(granted).Select(d => d.Delivery).ToList();
        foreach (var delivery in handed)
        {
            delivery.LeaseOwner = lease.Owner;
            delivery.LeaseUntil = lease.Until;
        }
        return handed;
    }

    private async Task<IReadOnlyList<ScheduledDelivery>> ScheduledForAsync(long eventKey, CancellationToken ct) =>
        await (from d in db.Deliveries.AsNoTracking()
               join p in db.ExportProfiles.AsNoTracking() on d.ProfileId equals p.Id into profiles
               from p in profiles.DefaultIfEmpty()
               where d.EventKey == eventKey
               orderby d.Id
               select new ScheduledDelivery(d.Id, d.ProfileId, p == null ? "" : p.Name, d.CustomerType, d.DueAt, d.Status))
            .ToListAsync(ct);
}
