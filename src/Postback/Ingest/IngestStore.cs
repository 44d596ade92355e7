using Microsoft.EntityFrameworkCore.Storage;
using Postback.Deliveries;
using Postback.Orders;
using Postback.Storage;

namespace Postback.Ingest;

/// How an ingest's rows reach the database (Storage/Stores/IngestStore.cs, one implementation
/// per database): EventIngest builds them, the store writes them, and they and everything else
/// the context tracks are stored in one transaction, under the write gate.
public interface IIngestStore
{
    /// What the ingest's lookups run in; null when nothing is needed.
    Task<IDbContextTransaction?> BeginLookupsAsync(PostbackDb db, CancellationToken ct);

    /// The organization's events already stored under these event ids (not tracked), by event id.
    Task<Dictionary<string, OrderEvent>> FindEventsAsync(PostbackDb db, long organizationId, IReadOnlyList<string> eventIds, CancellationToken ct);

    /// The organization's orders with these order ids, tracked (the ingest changes them), by order id.
    Task<Dictionary<long, StoredOrder>> FindOrdersAsync(PostbackDb db, long organizationId, IReadOnlyList<long> orderIds, CancellationToken ct);

    /// Adds what an inbound postback stores with its event (the SKUs to import, its inbound-log
    /// row) to the context, for SaveAsync to store in the same transaction. Returns the SKUs it
    /// imports.
    Task<IReadOnlyList<string>> StageInboundAsync(
        PostbackDb db, long organizationId, InboundPostback inbound, IngestedEvent result, HashSet<string> staged, CancellationToken ct);

    /// Stores the orders, events and deliveries (and whatever else the context tracks). A
    /// concurrent writer's change (an order's version, a unique index) ends in a DbUpdateException.
    Task SaveAsync(
        PostbackDb db, IReadOnlyList<StoredOrder> orders, IReadOnlyList<OrderEvent> events, IReadOnlyList<Delivery> deliveries, CancellationToken ct);
}
