using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Postback.Deliveries;
using Postback.Orders;

namespace Postback.Storage.Postgres;

public sealed class PostgresIngestStore(WriteGate gate) : IngestStore
{
    /// The lookups run in a read transaction that plans each statement for its own values. The
    /// hub's statements are prepared, and PostgreSQL gives a prepared statement a generic plan
    /// after five runs; made while the tables were still nearly empty (a fresh database, before
    /// autovacuum's first ANALYZE), that plan stays a sequential scan as the events table grows:
    /// the event-id lookup went from 0.1 ms to 50 ms that way.
    public override async Task<IDbContextTransaction?> BeginLookupsAsync(PostbackDb db, CancellationToken ct)
    {
        var transaction = await db.Database.BeginTransactionAsync(ct);
        await db.Database.ExecuteSqlRawAsync("SET LOCAL plan_cache_mode = force_custom_plan", ct);
        return transaction;
    }

    public override async Task SaveAsync(
        PostbackDb db, IReadOnlyList<StoredOrder> orders, IReadOnlyList<OrderEvent> events, IReadOnlyList<Delivery> deliveries, CancellationToken ct)
    {
        db.Orders.AddRange(orders.Where(o => o.Id == 0));
        db.OrderEvents.AddRange(events);
        db.Deliveries.AddRange(deliveries);
        using var turn = await gate.EnterAsync(ct);
        await db.SaveChangesAsync(ct);
    }
}
