using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;
using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.Ingest;
using Postback.Orders;
using Postback.Storage.Stores;

namespace Postback.Storage.Postgres;

/// An ingest on PostgreSQL in two round trips: its reads in one batch, its writes in another.
/// Each table is one statement whose rows go as arrays and are unnested; the stored orders the
/// ingest changed are written here too, each only at the version it read. EF's SaveChanges for
/// all of it built a command per row and tracked every entity: about a fifth of the hub's CPU on
/// the realistic workload (perf, bench/README.md); it now stores only what else the caller added
/// (a plugin's log entry). A concurrent writer's row (the same event id or order stored
/// meanwhile) fails a unique index, and a concurrent merge the version check: both end in a
/// DbUpdateException, which the ingest retries, as EF's would.
public sealed class PostgresIngestStore(WriteGate gate) : IngestStore
{
    private const string UniqueViolation = "23505";
    private const string SerializationFailure = "40001";
    private const string Deadlock = "40P01";

    // The routing profiles of each organization as last loaded, with the version of each row
    // (PostgreSQL's xmin: every update of a row gives it a new one). Loading and parsing them (the
    // mappings and routes are JSON) on every ingest was a fifth of its CPU (bench/README.md).
    // Shared by concurrent ingests and the sends they hand over: read only, never changed.
    private readonly ConcurrentDictionary<long, (long[] Versions, IReadOnlyList<ExportProfile> Profiles)> _profiles = new();

    /// The reads in one round trip, one batch: the routing profiles' row versions, the events,
    /// orders, recurring products and campaign names; the profiles themselves are loaded (EF: their
    /// JSON columns) only when their versions differ from those last loaded: a profile added,
    /// changed, disabled or deleted, by this process or any other. The batch plans each statement
    /// for its own values: the hub's statements are prepared, and PostgreSQL gives a prepared
    /// statement a generic plan after five runs; made while the tables were still nearly empty (a
    /// fresh database, before autovacuum's first ANALYZE), that plan stays a sequential scan as
    /// the tables grow: the event-id lookup went from 0.1 ms to 50 ms that way. One statement
    /// after another, the reads cost six round trips per ingest, each a wake-up of PostgreSQL and
    /// of the hub: a good part of an ingest's time on a busy machine (bench/README.md).
    public override async Task<IngestReads> ReadAsync(PostbackDb db, long organizationId, IngestKeys keys, CancellationToken ct)
    {
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            var connection = (NpgsqlConnection)db.Database.GetDbConnection();
            await using var batch = new NpgsqlBatch(connection);
            // For this batch only: PostgreSQL runs a batch as one transaction, and a local
            // setting ends with it.
            batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)"));
            // As RoutingProfiles selects them.
            var versions = new NpgsqlBatchCommand("""
                SELECT "Id", xmin::text::bigint FROM export_profiles
                WHERE "OrganizationId" = @org AND "Enabled" AND "Type" <> @file ORDER BY "Id"
                """);
            versions.Parameters.Add(new NpgsqlParameter("org", organizationId));
            versions.Parameters.Add(new NpgsqlParameter("file", ExportTypes.File));
            batch.BatchCommands.Add(versions);
            var eventIds = keys.EventIds.Distinct().ToArray();
            var orderIds = keys.OrderIds.Distinct().ToArray();
            var productIds = keys.ProductIds.Distinct().ToArray();
            var campaignIds = keys.CampaignIds.Distinct().ToArray();
            // The lookups go one key at a time through the unique index: equality on its whole
            // key is one row to the planner, statistics or not, so that probe is the cheapest plan.
            // As `"EventId" = ANY (@ids)` the plan depended on the table's statistics; a table not
            // yet analyzed got a bitmap scan of the organization's whole index range instead,
            // filtering every row: 9 ms per ingest at 21,000 events, growing with the table
            // (auto_explain, bench/README.md).
            batch.BatchCommands.Add(Query($"""
                SELECT {EventColumns} FROM unnest(@ids) AS k(id)
                CROSS JOIN LATERAL (SELECT * FROM order_events AS o WHERE o."OrganizationId" = @org AND o."EventId" = k.id LIMIT 1) AS e
                """, organizationId, eventIds));
            batch.BatchCommands.Add(Query($"""
                SELECT {OrderColumns} FROM unnest(@ids) AS k(id)
                CROSS JOIN LATERAL (SELECT * FROM orders AS s WHERE s."OrganizationId" = @org AND s."OrderId" = k.id LIMIT 1) AS o
                """, organizationId, orderIds));
            batch.BatchCommands.Add(Query("""
                SELECT "ProductId" FROM products WHERE "OrganizationId" = @org AND "Recurring" AND "ProductId" = ANY (@ids)
                """, organizationId, productIds));
            batch.BatchCommands.Add(Query("""
                SELECT "CampaignId", "Name" FROM campaigns WHERE "OrganizationId" = @org AND "CampaignId" = ANY (@ids)
                """, organizationId, campaignIds));

            var events = new Dictionary<string, OrderEvent>();
            var orders = new Dictionary<long, StoredOrder>();
            var recurring = new HashSet<string>(StringComparer.Ordinal);
            var campaignNames = new Dictionary<string, string>(StringComparer.Ordinal);
            var read = new List<long>();
            await using (var reader = await batch.ExecuteReaderAsync(ct))
            {
                await reader.NextResultAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    read.Add(reader.GetInt64(0));
                    read.Add(reader.GetInt64(1));
                }
                await reader.NextResultAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    var e = ReadEvent(reader);
                    events[e.EventId] = e;
                }
                await reader.NextResultAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    var o = ReadOrder(reader);
                    orders[o.OrderId] = o;
                }
                await reader.NextResultAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    recurring.Add(reader.GetString(0));
                }
                await reader.NextResultAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    campaignNames[reader.GetString(0)] = reader.GetString(1);
                }
            }
            // Tracked, as a LINQ query would have left them: the ingest changes them.
            db.Orders.AttachRange(orders.Values);
            IReadOnlyList<ExportProfile> profiles;
            if (_profiles.TryGetValue(organizationId, out var known) && known.Versions.AsSpan().SequenceEqual(CollectionsMarshal.AsSpan(read)))
            {
                profiles = known.Profiles;
            }
            else
            {
                // Loaded after the versions were read: a change in between makes them differ
                // from these versions at the next ingest, which loads them again.
                profiles = await RoutingProfiles(db, organizationId).ToListAsync(ct);
                _profiles[organizationId] = ([.. read], profiles);
            }
            if (profiles.Count == 0)
            {
                // Nothing routes: the ingest reads neither products nor campaigns.
                recurring.Clear();
                campaignNames.Clear();
            }
            return new IngestReads(events, orders, profiles, recurring, campaignNames);
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    private const string EventColumns = """
        e."Id", e."OrganizationId", e."EventId", e."Type", e."OrderKey", e."OrderId", e."OccurredAt", e."ReceivedAt"
        """;

    private const string OrderColumns = """
        o."Id", o."OrganizationId", o."OrderId", o."CustomerId", o."CampaignId", o."IsTestCard", o."Data", o."Version", o."CaptureSources", o."CreatedAt", o."UpdatedAt"
        """;

    private static NpgsqlBatchCommand Query<T>(string sql, long organizationId, T[] ids)
    {
        var command = new NpgsqlBatchCommand(sql);
        command.Parameters.Add(new NpgsqlParameter("org", organizationId));
        command.Parameters.Add(new NpgsqlParameter("ids", ids));
        return command;
    }

    private static OrderEvent ReadEvent(NpgsqlDataReader r) => new()
    {
        Id = r.GetInt64(0), OrganizationId = r.GetInt64(1), EventId = r.GetString(2), Type = r.GetString(3), OrderKey = r.GetInt64(4),
        OrderId = r.GetInt64(5), OccurredAt = r.GetFieldValue<DateTimeOffset>(6), ReceivedAt = r.GetFieldValue<DateTimeOffset>(7),
    };

    private static StoredOrder ReadOrder(NpgsqlDataReader r) => new()
    {
        Id = r.GetInt64(0), OrganizationId = r.GetInt64(1), OrderId = r.GetInt64(2), CustomerId = r.IsDBNull(3) ? null : r.GetString(3),
        CampaignId = r.IsDBNull(4) ? null : r.GetString(4), IsTestCard = r.GetBoolean(5), Data = r.GetString(6), Version = r.GetInt64(7),
        CaptureSources = r.IsDBNull(8) ? null : r.GetString(8), CreatedAt = r.GetFieldValue<DateTimeOffset>(9), UpdatedAt = r.GetFieldValue<DateTimeOffset>(10),
    };

    /// One batch: the new orders, the changed ones (each only at the version the ingest read),
    /// the events and the deliveries, each table one statement whose rows go as arrays; the
    /// events find their order, the deliveries their event, by key in the same batch. When the
    /// ingest changed no stored order and the context holds nothing else, the batch is the whole
    /// transaction (one round trip: PostgreSQL runs a batch as one implicit transaction); else it
    /// runs in an explicit one, whose commit waits for the version check and EF's SaveChanges
    /// (a plugin's log entry). Statement by statement this cost five round trips per ingest.
    public override async Task SaveAsync(
        PostbackDb db, IReadOnlyList<StoredOrder> orders, IReadOnlyList<OrderEvent> events, IReadOnlyList<Delivery> deliveries, CancellationToken ct)
    {
        using var turn = await gate.EnterAsync(ct);
        // By key: two writers that touch the same orders lock them in the same order, so they
        // wait for each other rather than deadlock.
        var fresh = orders.Where(o => o.Id == 0).OrderBy(o => o.OrderId).ToList();
        var changed = orders.Where(o => o.Id != 0).OrderBy(o => o.Id)
            .Select(o => (Order: o, Loaded: db.Entry(o).Property(x => x.Version).OriginalValue)).ToList();
        // Written here, with their version check, rather than by EF.
        foreach (var (order, _) in changed)
        {
            db.Entry(order).State = EntityState.Detached;
        }
        var alone = changed.Count == 0 && !db.ChangeTracker.HasChanges();

        await db.Database.OpenConnectionAsync(ct);
        try
        {
            await using var transaction = alone ? null : await db.Database.BeginTransactionAsync(ct);
            await using var batch = new NpgsqlBatch((NpgsqlConnection)db.Database.GetDbConnection(), (NpgsqlTransaction?)transaction?.GetDbTransaction());
            var insertOrders = fresh.Count > 0 ? InsertOrders(fresh) : null;
            var updateOrders = changed.Count > 0 ? UpdateOrders(changed) : null;
            var insertEvents = events.Count > 0 ? InsertEvents(events) : null;
            var insertDeliveries = deliveries.Count > 0 ? InsertDeliveries(deliveries) : null;
            foreach (var command in new[] { insertOrders, updateOrders, insertEvents, insertDeliveries })
            {
                if (command is not null)
                {
                    batch.BatchCommands.Add(command);
                }
            }
            if (batch.BatchCommands.Count > 0)
            {
                try
                {
                    // The reader stands on the first statement that returns rows, and each
                    // NextResult goes on to the next such (the update returns none). Without a
                    // transaction the server has committed the batch once it answered: what is
                    // checked below must not be able to fail on that path (it has no update,
                    // and every event's order is one this batch inserted).
                    await using (var reader = await batch.ExecuteReaderAsync(ct))
                    {
                        await ReadOrderIdsAsync(reader, insertOrders, fresh, ct);
                        await ReadEventIdsAsync(reader, insertEvents, events, ct);
                        await ReadDeliveryIdsAsync(reader, insertDeliveries, deliveries, ct);
                    }
                    if (updateOrders is not null && updateOrders.Rows != (ulong)changed.Count)
                    {
                        throw new DbUpdateConcurrencyException("An order was changed by another writer meanwhile.");
                    }
                }
                catch (PostgresException e) when (e.SqlState == UniqueViolation)
                {
                    throw new DbUpdateException("Another writer stored the same order or event meanwhile: " + e.MessageText, e);
                }
                catch (PostgresException e) when (e.SqlState is Deadlock or SerializationFailure)
                {
                    // Nothing of the batch stays; the ingest reads again and retries.
                    throw new DbUpdateException("Another writer held the same orders meanwhile: " + e.MessageText, e);
                }
            }
            if (transaction is not null)
            {
                await db.SaveChangesAsync(ct);
                await transaction.CommitAsync(ct);
            }
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    private static NpgsqlBatchCommand InsertOrders(List<StoredOrder> orders)
    {
        foreach (var o in orders)
        {
            o.CreatedAt = StorageTime.Normalize(o.CreatedAt);
            o.UpdatedAt = StorageTime.Normalize(o.UpdatedAt);
        }
        var insert = new NpgsqlBatchCommand("""
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
        return insert;
    }

    // Each order only at the version the ingest read: another writer's merge in between leaves
    // it out, and the count says so.
    private static NpgsqlBatchCommand UpdateOrders(List<(StoredOrder Order, long Loaded)> orders)
    {
        foreach (var (o, _) in orders)
        {
            o.UpdatedAt = StorageTime.Normalize(o.UpdatedAt);
        }
        var update = new NpgsqlBatchCommand("""
            UPDATE orders AS o SET "CustomerId" = v.customer, "CampaignId" = v.campaign, "IsTestCard" = v.test, "Data" = v.data,
              "Version" = v.version, "UpdatedAt" = v.updated
            FROM unnest(@p0, @p1, @p2, @p3, @p4, @p5, @p6, @p7) AS v(id, loaded, customer, campaign, test, data, version, updated)
            WHERE o."Id" = v.id AND o."Version" = v.loaded
            """);
        Add(update, orders.Select(o => o.Order.Id).ToArray());
        Add(update, orders.Select(o => o.Loaded).ToArray());
        Add(update, orders.Select(o => o.Order.CustomerId).ToArray());
        Add(update, orders.Select(o => o.Order.CampaignId).ToArray());
        Add(update, orders.Select(o => o.Order.IsTestCard).ToArray());
        Add(update, orders.Select(o => o.Order.Data).ToArray());
        Add(update, orders.Select(o => o.Order.Version).ToArray());
        Add(update, orders.Select(o => o.Order.UpdatedAt).ToArray());
        return update;
    }

    // An event's order is found by its key, as the order may be one this batch inserts.
    private static NpgsqlBatchCommand InsertEvents(IReadOnlyList<OrderEvent> events)
    {
        foreach (var e in events)
        {
            e.OccurredAt = StorageTime.Normalize(e.OccurredAt);
            e.ReceivedAt = StorageTime.Normalize(e.ReceivedAt);
        }
        var insert = new NpgsqlBatchCommand("""
            INSERT INTO order_events ("OrganizationId", "EventId", "Type", "OrderKey", "OrderId", "OccurredAt", "ReceivedAt")
            SELECT v.organization, v.event, v.type, o."Id", v.order_id, v.occurred, v.received
            FROM unnest(@p0, @p1, @p2, @p3, @p4, @p5) AS v(organization, event, type, order_id, occurred, received)
            CROSS JOIN LATERAL (SELECT s."Id" FROM orders AS s WHERE s."OrganizationId" = v.organization AND s."OrderId" = v.order_id LIMIT 1) AS o
            RETURNING "Id", "OrganizationId", "EventId", "OrderKey"
            """);
        Add(insert, events.Select(e => e.OrganizationId).ToArray());
        Add(insert, events.Select(e => e.EventId).ToArray());
        Add(insert, events.Select(e => e.Type).ToArray());
        Add(insert, events.Select(e => e.OrderId).ToArray());
        Add(insert, events.Select(e => e.OccurredAt).ToArray());
        Add(insert, events.Select(e => e.ReceivedAt).ToArray());
        return insert;
    }

    // A delivery's event, and through it its order, are found by the event's key.
    private static NpgsqlBatchCommand InsertDeliveries(IReadOnlyList<Delivery> deliveries)
    {
        foreach (var d in deliveries)
        {
            d.DueAt = StorageTime.Normalize(d.DueAt);
            d.FirstDueAt = StorageTime.Normalize(d.FirstDueAt);
            d.CreatedAt = StorageTime.Normalize(d.CreatedAt);
            d.LeaseUntil = d.LeaseUntil is { } until ? StorageTime.Normalize(until) : null;
        }
        var insert = new NpgsqlBatchCommand("""
            INSERT INTO deliveries ("OrganizationId", "ProfileId", "EventKey", "OrderKey", "OrderId", "CustomerId", "CustomerType", "Status",
              "Endpoint", "DueAt", "FirstDueAt", "Attempts", "CreatedAt", "Ordered", "TraceParent", "LeaseOwner", "LeaseUntil")
            SELECT v.organization, v.profile, e."Id", e."OrderKey", v.order_id, v.customer, v.customer_type, v.status,
              v.endpoint, v.due, v.first_due, v.attempts, v.created, v.ordered, v.trace, v.lease_owner, v.lease_until
            FROM unnest(@p0, @p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9, @p10, @p11, @p12, @p13, @p14, @p15)
              AS v(organization, profile, event, order_id, customer, customer_type, status, endpoint, due, first_due, attempts, created, ordered,
                trace, lease_owner, lease_until)
            CROSS JOIN LATERAL (SELECT s."Id", s."OrderKey" FROM order_events AS s WHERE s."OrganizationId" = v.organization AND s."EventId" = v.event LIMIT 1) AS e
            RETURNING "Id", "EventKey", "ProfileId"
            """);
        Add(insert, deliveries.Select(d => d.OrganizationId).ToArray());
        Add(insert, deliveries.Select(d => d.ProfileId).ToArray());
        Add(insert, deliveries.Select(d => d.Event!.EventId).ToArray());
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
        return insert;
    }

    // RETURNING's row order is not promised: each id goes back by the row's unique key.
    private static async Task ReadOrderIdsAsync(NpgsqlDataReader reader, NpgsqlBatchCommand? insert, List<StoredOrder> orders, CancellationToken ct)
    {
        if (insert is null)
        {
            return;
        }
        var byKey = orders.ToDictionary(o => (o.OrganizationId, o.OrderId));
        while (await reader.ReadAsync(ct))
        {
            byKey[(reader.GetInt64(1), reader.GetInt64(2))].Id = reader.GetInt64(0);
        }
        await reader.NextResultAsync(ct);
    }

    private static async Task ReadEventIdsAsync(NpgsqlDataReader reader, NpgsqlBatchCommand? insert, IReadOnlyList<OrderEvent> events, CancellationToken ct)
    {
        if (insert is null)
        {
            return;
        }
        var byKey = events.ToDictionary(e => (e.OrganizationId, e.EventId));
        var found = 0;
        while (await reader.ReadAsync(ct))
        {
            var e = byKey[(reader.GetInt64(1), reader.GetString(2))];
            e.Id = reader.GetInt64(0);
            e.OrderKey = reader.GetInt64(3);
            found++;
        }
        if (found != events.Count)
        {
            throw new DbUpdateConcurrencyException("An order was removed by another writer meanwhile.");
        }
        await reader.NextResultAsync(ct);
    }

    private static async Task ReadDeliveryIdsAsync(NpgsqlDataReader reader, NpgsqlBatchCommand? insert, IReadOnlyList<Delivery> deliveries, CancellationToken ct)
    {
        if (insert is null)
        {
            return;
        }
        // An event schedules at most one delivery per profile, so (event, profile) names a row.
        foreach (var d in deliveries)
        {
            d.EventKey = d.Event!.Id;
            d.OrderKey = d.Order!.Id;
        }
        var byKey = deliveries.ToDictionary(d => (d.EventKey, d.ProfileId));
        while (await reader.ReadAsync(ct))
        {
            byKey[(reader.GetInt64(1), reader.GetInt64(2))].Id = reader.GetInt64(0);
        }
    }

    // Parameters @p0, @p1, ... in the order added. Times go as UTC (timestamptz arrays).
    private static void Add<T>(NpgsqlBatchCommand command, T[] values)
    {
        object value = values switch
        {
            DateTimeOffset[] times => times.Select(t => t.ToUniversalTime()).ToArray(),
            DateTimeOffset?[] times => times.Select(t => t?.ToUniversalTime()).ToArray(),
            _ => values,
        };
        command.Parameters.Add(new NpgsqlParameter("p" + command.Parameters.Count, value));
    }
}
