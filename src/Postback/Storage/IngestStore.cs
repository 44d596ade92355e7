using Microsoft.EntityFrameworkCore.Storage;
using Postback.Deliveries;
using Postback.Orders;

namespace Postback.Storage;

/// How an ingest's rows reach the database (Orders/EventIngest.cs builds them; the orders it
/// read are tracked by the context, the new orders, events and deliveries are not):
/// Storage/Sqlite writes them with prepared statements, Storage/Postgres adds them to the
/// context and saves. Either way, they and everything else the context tracks are stored in
/// one transaction, under the write gate.
public abstract class IngestStore
{
    /// What the ingest's lookups run in; null when nothing is needed.
    public virtual Task<IDbContextTransaction?> BeginLookupsAsync(PostbackDb db, CancellationToken ct) =>
        Task.FromResult<IDbContextTransaction?>(null);

    /// Stores the orders, events and deliveries (and whatever else the context tracks). A
    /// concurrent writer's change (an order's version, a unique index) ends in a DbUpdateException.
    public abstract Task SaveAsync(
        PostbackDb db, IReadOnlyList<StoredOrder> orders, IReadOnlyList<OrderEvent> events, IReadOnlyList<Delivery> deliveries, CancellationToken ct);
}
