using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.Orders;
using Postback.Storage;

namespace Postback.Ingest;

/// How an ingest's rows reach the database (Storage/Stores/IngestStore.cs, one implementation
/// per database): EventIngest builds them, the store writes them, and they and everything else
/// the context tracks are stored in one transaction, under the write gate.
public interface IIngestStore
{
    /// Everything the ingest reads before it builds its rows: the organization's events already
    /// stored under these event ids (not tracked), its orders with these order ids (tracked: the
    /// ingest changes them), its profiles that route events (enabled, not file profiles; by id),
    /// which of these product ids are recurring products, and the names of these campaigns (both
    /// read only when a profile routes).
    Task<IngestReads> ReadAsync(PostbackDb db, long organizationId, IngestKeys keys, CancellationToken ct);

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

/// What an ingest looks up, each key once: event ids, order ids, and its orders' product and
/// campaign ids.
public sealed record IngestKeys(
    IReadOnlyList<string> EventIds, IReadOnlyList<long> OrderIds, IReadOnlyList<string> ProductIds, IReadOnlyList<string> CampaignIds);

/// What IIngestStore.ReadAsync found: events by event id, orders by order id, campaign names by
/// campaign id.
public sealed record IngestReads(
    Dictionary<string, OrderEvent> Events, Dictionary<long, StoredOrder> Orders, IReadOnlyList<ExportProfile> Profiles,
    IReadOnlySet<string> RecurringProducts, IReadOnlyDictionary<string, string> CampaignNames);
