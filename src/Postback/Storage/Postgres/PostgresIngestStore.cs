using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;
using Postback.Deliveries;
using Postback.Orders;
using Postback.Storage.Stores;

namespace Postback.Storage.Postgres;

/// Writes an ingest's new orders, events and deliveries with one INSERT per table, the rows
/// sent as arrays and unnested, each returning the ids it made; then EF's SaveChanges, in the
/// same transaction, writes the orders the ingest read and changed (with their version check)
/// and whatever else the caller added (a plugin's log entry). EF's SaveChanges for all of it
/// built a command per row and tracked every entity: about a fifth of the hub's CPU on the
/// realistic workload (perf, bench/README.md). A concurrent writer's row (the same event id or
/// order stored meanwhile) fails a unique index and ends in a DbUpdateException, which the
/// ingest retries, as EF's would.
public sealed class PostgresIngestStore(WriteGate gate) : IngestStore
{
    private const string UniqueViolation = "23505";

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

    // The lookups go one key at a time through the unique index: equality on its whole key is
    // one row to the planner, statistics or not, so that probe is the cheapest plan. As
    // `"EventId" = ANY (@ids)` the plan depended on the table's statistics; a
    // table not yet analyzed (a new database, for its first minute or so until autovacuum's
    // first ANALYZE) got a bitmap scan of the organization's whole index range instead, filtering
    // every row: 9 ms per ingest at 21,000 events, growing with the table (auto_explain,
    // bench/README.md).
    public override async Task<Dictionary<string, OrderEvent>> FindEventsAsync(
        PostbackDb db, long organizationId, IReadOnlyList<string> eventIds, CancellationToken ct)
    {
        if (eventIds.Count == 0)
        {
            return [];
        }
        var ids = eventIds.Distinct().ToArray();
        return await db.Set<OrderEvent>().FromSql($"""
            SELECT e.* FROM unnest({ids}) AS k(id)
            CROSS JOIN LATERAL (SELECT * FROM order_events AS o WHERE o."OrganizationId" = {organizationId} AND o."EventId" = k.id LIMIT 1) AS e
            """).AsNoTracking().ToDictionaryAsync(e => e.EventId, ct);
    }

    public override async Task<Dictionary<long, StoredOrder>> FindOrdersAsync(
        PostbackDb db, long organizationId, IReadOnlyList<long> orderIds, CancellationToken ct)
    {
        var ids = orderIds.Distinct().ToArray();
        return await db.Set<StoredOrder>().FromSql($"""
            SELECT o.* FROM unnest({ids}) AS k(id)
            CROSS JOIN LATERAL (SELECT * FROM orders AS s WHERE s."OrganizationId" = {organizationId} AND s."OrderId" = k.id LIMIT 1) AS o
            """).ToDictionaryAsync(o => o.OrderId, ct);
    }

    public override async Task SaveAsync(
        PostbackDb db, IReadOnlyList<StoredOrder> orders, IReadOnlyList<OrderEvent> events, IReadOnlyList<Delivery> deliveries, CancellationToken ct)
    {
        using var turn = await gate.EnterAsync(ct);
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var connection = db.Database.GetDbConnection();
        var dbTransaction = transaction.GetDbTransaction();
        try
        {
            await InsertOrdersAsync(connection, dbTransaction, orders.Where(o => o.Id == 0).ToList(), ct);
            await InsertEventsAsync(connection, dbTransaction, events, ct);
            await InsertDeliveriesAsync(connection, dbTransaction, deliveries, ct);
        }
        catch (PostgresException e) when (e.SqlState == UniqueViolation)
        {
            throw new DbUpdateException("Another writer stored the same order or event meanwhile: " + e.MessageText, e);
        }
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
    }

    private static async Task InsertOrdersAsync(DbConnection connection, DbTransaction transaction, List<StoredOrder> orders, CancellationToken ct)
    {
        if (orders.Count == 0)
        {
            return;
        }
        foreach (var o in orders)
        {
            o.CreatedAt = StorageTime.Normalize(o.CreatedAt);
            o.UpdatedAt = StorageTime.Normalize(o.UpdatedAt);
        }
        await using var insert = Command(connection, transaction, """
            INSERT INTO orders ("OrganizationId", "OrderId", "CustomerId", "CampaignId", "IsTestCard", "Data", "Version", "CreatedAt", "UpdatedAt")
            SELECT * FROM unnest(@p0, @p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8)
            RETURNING "Id", "OrganizationId", "OrderId"
            """);
        Add(insert, orders.Select(o => o.OrganizationId).ToArray());
        Add(insert, orders.Select(o => o.OrderId).ToArray());
        Add(insert, orders.Select(o => o.CustomerId).ToArray());
        Add(insert, orders.Select(o => o.CampaignId).ToArray());
        Add(insert, orders.Select(o => o.IsTestCard).ToArray());
        Add(insert, orders.Select(o => o.Data).ToArray());
        Add(insert, orders.Select(o => o.Version).ToArray());
        Add(insert, orders.Select(o => o.CreatedAt).ToArray());
        Add(insert, orders.Select(o => o.UpdatedAt).ToArray());
        // RETURNING's row order is not promised: each id goes back by the row's unique key.
        var byKey = orders.ToDictionary(o => (o.OrganizationId, o.OrderId));
        await using var reader = await insert.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            byKey[(reader.GetInt64(1), reader.GetInt64(2))].Id = reader.GetInt64(0);
        }
    }

    private static async Task InsertEventsAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<OrderEvent> events, CancellationToken ct)
    {
        if (events.Count == 0)
        {
            return;
        }
        foreach (var e in events)
        {
            e.OrderKey = e.Order!.Id;
            e.OccurredAt = StorageTime.Normalize(e.OccurredAt);
            e.ReceivedAt = StorageTime.Normalize(e.ReceivedAt);
        }
        await using var insert = Command(connection, transaction, """
            INSERT INTO order_events ("OrganizationId", "EventId", "Type", "OrderKey", "OrderId", "OccurredAt", "ReceivedAt")
            SELECT * FROM unnest(@p0, @p1, @p2, @p3, @p4, @p5, @p6)
            RETURNING "Id", "OrganizationId", "EventId"
            """);
        Add(insert, events.Select(e => e.OrganizationId).ToArray());
        Add(insert, events.Select(e => e.EventId).ToArray());
        Add(insert, events.Select(e => e.Type).ToArray());
        Add(insert, events.Select(e => e.OrderKey).ToArray());
        Add(insert, events.Select(e => e.OrderId).ToArray());
        Add(insert, events.Select(e => e.OccurredAt).ToArray());
        Add(insert, events.Select(e => e.ReceivedAt).ToArray());
        var byKey = events.ToDictionary(e => (e.OrganizationId, e.EventId));
        await using var reader = await insert.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            byKey[(reader.GetInt64(1), reader.GetString(2))].Id = reader.GetInt64(0);
        }
    }

    private static async Task InsertDeliveriesAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<Delivery> deliveries, CancellationToken ct)
    {
        if (deliveries.Count == 0)
        {
            return;
        }
        foreach (var d in deliveries)
        {
            d.EventKey = d.Event!.Id;
            d.OrderKey = d.Order!.Id;
            d.DueAt = StorageTime.Normalize(d.DueAt);
            d.FirstDueAt = StorageTime.Normalize(d.FirstDueAt);
            d.CreatedAt = StorageTime.Normalize(d.CreatedAt);
            d.LeaseUntil = d.LeaseUntil is { } until ? StorageTime.Normalize(until) : null;
        }
        // An event schedules at most one delivery per profile, so (event, profile) names a row.
        await using var insert = Command(connection, transaction, """
            INSERT INTO deliveries ("OrganizationId", "ProfileId", "EventKey", "OrderKey", "OrderId", "CustomerId", "CustomerType", "Status",
              "Endpoint", "DueAt", "FirstDueAt", "Attempts", "CreatedAt", "Ordered", "TraceParent", "LeaseOwner", "LeaseUntil")
            SELECT * FROM unnest(@p0, @p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9, @p10, @p11, @p12, @p13, @p14, @p15, @p16)
            RETURNING "Id", "EventKey", "ProfileId"
            """);
        Add(insert, deliveries.Select(d => d.OrganizationId).ToArray());
        Add(insert, deliveries.Select(d => d.ProfileId).ToArray());
        Add(insert, deliveries.Select(d => d.EventKey).ToArray());
        Add(insert, deliveries.Select(d => d.OrderKey).ToArray());
        Add(insert, deliveries.Select(d => d.OrderId).ToArray());
        Add(insert, deliveries.Select(d => d.CustomerId).ToArray());
        Add(insert, deliveries.Select(d => d.CustomerType).ToArray());
        Add(insert, deliveries.Select(d => d.Status).ToArray());
        Add(insert, deliveries.Select(d => d.Endpoint).ToArray());
        Add(insert, deliveries.Select(d => d.DueAt).ToArray());
        Add(insert, deliveries.Select(d => d.FirstDueAt).ToArray());
        Add(insert, deliveries.Select(d => d.Attempts).ToArray());
        Add(insert, deliveries.Select(d => d.CreatedAt).ToArray());
        Add(insert, deliveries.Select(d => d.Ordered).ToArray());
        Add(insert, deliveries.Select(d => d.TraceParent).ToArray());
        Add(insert, deliveries.Select(d => d.LeaseOwner).ToArray());
        Add(insert, deliveries.Select(d => d.LeaseUntil).ToArray());
        var byKey = deliveries.ToDictionary(d => (d.EventKey, d.ProfileId));
        await using var reader = await insert.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            byKey[(reader.GetInt64(1), reader.GetInt64(2))].Id = reader.GetInt64(0);
        }
    }

    private static DbCommand Command(DbConnection connection, DbTransaction transaction, string sql)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command;
    }

    // Parameters @p0, @p1, ... in the order added. Times go as UTC (timestamptz arrays).
    private static void Add<T>(DbCommand command, T[] values)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = "@p" + command.Parameters.Count;
        parameter.Value = values switch
        {
            DateTimeOffset[] times => times.Select(t => t.ToUniversalTime()).ToArray(),
            DateTimeOffset?[] times => times.Select(t => t?.ToUniversalTime()).ToArray(),
            _ => values,
        };
        command.Parameters.Add(parameter);
    }
}
