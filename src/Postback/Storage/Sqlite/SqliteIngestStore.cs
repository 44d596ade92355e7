using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Postback.Deliveries;
using Postback.Orders;
using Postback.Storage.Stores;

namespace Postback.Storage.Sqlite;

/// Writes an ingest's orders, events and deliveries to SQLite with one prepared statement per
/// table, reused for every row, inside the caller's transaction. SQLite has one writer, so
/// everything here runs under the write gate; EF's SaveChanges spent most of that time
/// building a command per row. What EF would have checked is checked here too: an order's
/// version (another writer merged into it meanwhile) and the unique indexes (the same event
/// id or order stored meanwhile) both end in a DbUpdateException, which the ingest retries.
/// The new rows never enter the change tracker and the orders it read leave it once written,
/// so the caller's SaveChanges stores only what else it added (a plugin's log entry) in the
/// same transaction.
public sealed class SqliteIngestStore(WriteGate gate) : IngestStore
{
    private const int SqliteConstraint = 19;

    public override async Task SaveAsync(
        PostbackDb db, IReadOnlyList<StoredOrder> orders, IReadOnlyList<OrderEvent> events, IReadOnlyList<Delivery> deliveries, CancellationToken ct)
    {
        using var turn = await gate.EnterAsync(ct);
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        await WriteAsync(db, orders, events, deliveries, ct);
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
    }

    private static async Task WriteAsync(
        PostbackDb db, IReadOnlyList<StoredOrder> orders, IReadOnlyList<OrderEvent> events, IReadOnlyList<Delivery> deliveries, CancellationToken ct)
    {
        var connection = db.Database.GetDbConnection();
        var transaction = db.Database.CurrentTransaction?.GetDbTransaction()
            ?? throw new InvalidOperationException("The ingest writer runs inside the caller's transaction.");
        // The orders the ingest read (and the context tracks); the new ones get their ids here.
        var read = orders.Where(o => o.Id != 0).ToList();
        try
        {
            await WriteOrdersAsync(db, connection, transaction, orders, ct);
            await WriteEventsAsync(connection, transaction, events, ct);
            await WriteDeliveriesAsync(connection, transaction, deliveries, ct);
        }
        catch (SqliteException e) when (e.SqliteErrorCode == SqliteConstraint)
        {
            throw new DbUpdateException("Another writer stored the same order or event meanwhile: " + e.Message, e);
        }
        foreach (var order in read)
        {
            db.Entry(order).State = EntityState.Detached;
        }
    }

    private static async Task WriteOrdersAsync(PostbackDb db, DbConnection connection, DbTransaction transaction, IReadOnlyList<StoredOrder> orders, CancellationToken ct)
    {
        await using var insert = Command(connection, transaction, """
            INSERT INTO orders ("OrganizationId", "OrderId", "CustomerId", "CampaignId", "IsTestCard", "Data", "Version", "CreatedAt", "UpdatedAt")
            VALUES (@p0, @p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8) RETURNING "Id"
            """, 9);
        await using var update = Command(connection, transaction, """
            UPDATE orders SET "CustomerId" = @p0, "CampaignId" = @p1, "IsTestCard" = @p2, "Data" = @p3, "Version" = @p4, "UpdatedAt" = @p5
            WHERE "Id" = @p6 AND "Version" = @p7
            """, 8);
        foreach (var order in orders)
        {
            order.CreatedAt = Micro(order.CreatedAt);
            order.UpdatedAt = Micro(order.UpdatedAt);
            if (order.Id == 0)
            {
                Set(insert, order.OrganizationId, order.OrderId, order.CustomerId, order.CampaignId, order.IsTestCard, order.Data, order.Version,
                    Ticks(order.CreatedAt), Ticks(order.UpdatedAt));
                order.Id = (long)(await insert.ExecuteScalarAsync(ct))!;
                continue;
            }
            var loadedVersion = db.Entry(order).Property(o => o.Version).OriginalValue;
            Set(update, order.CustomerId, order.CampaignId, order.IsTestCard, order.Data, order.Version, Ticks(order.UpdatedAt), order.Id, loadedVersion);
            if (await update.ExecuteNonQueryAsync(ct) != 1)
            {
                throw new DbUpdateConcurrencyException($"Order {order.OrderId} was changed by another writer meanwhile.");
            }
        }
    }

    private static async Task WriteEventsAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<OrderEvent> events, CancellationToken ct)
    {
        await using var insert = Command(connection, transaction, """
            INSERT INTO order_events ("OrganizationId", "EventId", "Type", "OrderKey", "OrderId", "OccurredAt", "ReceivedAt")
            VALUES (@p0, @p1, @p2, @p3, @p4, @p5, @p6) RETURNING "Id"
            """, 7);
        foreach (var e in events)
        {
            e.OrderKey = e.Order!.Id;
            e.OccurredAt = Micro(e.OccurredAt);
            e.ReceivedAt = Micro(e.ReceivedAt);
            Set(insert, e.OrganizationId, e.EventId, e.Type, e.OrderKey, e.OrderId, Ticks(e.OccurredAt), Ticks(e.ReceivedAt));
            e.Id = (long)(await insert.ExecuteScalarAsync(ct))!;
        }
    }

    private static async Task WriteDeliveriesAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<Delivery> deliveries, CancellationToken ct)
    {
        await using var insert = Command(connection, transaction, """
            INSERT INTO deliveries ("OrganizationId", "ProfileId", "EventKey", "OrderKey", "OrderId", "CustomerId", "CustomerType", "Status",
              "Endpoint", "DueAt", "FirstDueAt", "Attempts", "CreatedAt", "Ordered", "TraceParent", "LeaseOwner", "LeaseUntil")
            VALUES (@p0, @p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9, @p10, @p11, @p12, @p13, @p14, @p15, @p16) RETURNING "Id"
            """, 17);
        foreach (var d in deliveries)
        {
            d.EventKey = d.Event!.Id;
            d.OrderKey = d.Order!.Id;
            d.DueAt = Micro(d.DueAt);
            d.FirstDueAt = Micro(d.FirstDueAt);
            d.CreatedAt = Micro(d.CreatedAt);
            d.LeaseUntil = d.LeaseUntil is { } until ? Micro(until) : null;
            Set(insert, d.OrganizationId, d.ProfileId, d.EventKey, d.OrderKey, d.OrderId, d.CustomerId, d.CustomerType, d.Status,
                d.Endpoint, Ticks(d.DueAt), Ticks(d.FirstDueAt), d.Attempts, Ticks(d.CreatedAt), d.Ordered, d.TraceParent,
                d.LeaseOwner, d.LeaseUntil is { } leased ? Ticks(leased) : null);
            d.Id = (long)(await insert.ExecuteScalarAsync(ct))!;
        }
    }

    private static DbCommand Command(DbConnection connection, DbTransaction transaction, string sql, int parameters)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        for (var i = 0; i < parameters; i++)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = "@p" + i;
            command.Parameters.Add(parameter);
        }
        return command;
    }

    private static void Set(DbCommand command, params object?[] values)
    {
        for (var i = 0; i < values.Length; i++)
        {
            command.Parameters[i].Value = values[i] ?? DBNull.Value;
        }
    }

    // As SqlitePostbackDb stores times (UTC ticks to the microsecond), and as PostbackDb rounds
    // the entities themselves, so what the API echoes equals what it later reads.
    private static DateTimeOffset Micro(DateTimeOffset t) => StorageTime.Normalize(t);

    private static long Ticks(DateTimeOffset t) => StorageTime.ToTicks(t);
}
