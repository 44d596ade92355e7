using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Postback.Deliveries;
using Postback.Infrastructure;
using Postback.Orders;

namespace Postback.Storage.Stores;

/// The delivery queue's storage, set-based: claim a batch under a lease in one statement, finish
/// a batch of outcomes in one transaction. Claims skip rows another worker holds (PostgreSQL:
/// FOR UPDATE SKIP LOCKED; SQLite has one writer, so its single UPDATE is already exclusive),
/// and an outcome is only written while the lease is still ours: a worker that stalled past its
/// lease must not overwrite what the worker that took over recorded. What differs between the
/// databases is in Storage/Sqlite and Storage/Postgres.
public abstract class DeliveryStore(IServiceScopeFactory scopes, WriteGate gate) : IDeliveryStore
{
    private readonly LeaseRows<Delivery> _leases = new(scopes, gate, db => db.Deliveries);

    protected abstract string ClaimSql(IReadOnlyList<string> blockedEndpoints);

    /// Statements run before the claim, in its transaction (none: no transaction of its own).
    protected virtual string? ClaimSettings => null;

    protected abstract object Time(DateTimeOffset value);

    protected abstract DateTimeOffset ReadTime(DbDataReader reader, int ordinal);

    /// Writes each outcome to its delivery, only where the lease is still ours; returns the
    /// ids written.
    protected abstract Task<HashSet<long>> UpdateAsync(DbConnection connection, DbTransaction transaction, string owner, IReadOnlyList<DeliveryOutcome> outcomes, DateTimeOffset now, CancellationToken ct);

    /// Inserts attempts in bulk; their ids stay unset (nothing reads them back).
    protected abstract Task InsertAttemptsAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<DeliveryAttempt> attempts, CancellationToken ct);

    protected abstract Task InsertHistoryAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<HistoryEntry> entries, CancellationToken ct);

    protected const string SetOutcome = """
        "Status" = {0}status, "DueAt" = COALESCE({0}due, d."DueAt"), "Attempts" = d."Attempts" + {0}tried,
        "LastAttemptAt" = COALESCE({0}attempt_at, d."LastAttemptAt"), "LastStatusCode" = COALESCE({0}code, d."LastStatusCode"),
        "LastError" = {0}error, "CompletedAt" = {0}completed, "LeaseOwner" = NULL, "LeaseUntil" = NULL
        """;

    protected const string AttemptColumns = """
        "DeliveryId", "OrganizationId", "Number", "StartedAt", "DurationMs", "RequestMethod", "RequestUrl",
        "RequestHeaders", "RequestBody", "ResponseStatus", "ResponseHeaders", "ResponseBody", "Error", "Succeeded", "Captures"
        """;

    protected const string HistoryColumns = """
        "OrganizationId", "CustomerId", "OrderId", "Kind", "DeliveryId", "ProfileId", "CustomerType", "Message", "CreatedAt"
        """;

    protected const string Columns = """ "Id", "OrganizationId", "ProfileId", "OrderKey", "OrderId", "CustomerId", "CustomerType", "Endpoint", "Attempts", "FirstDueAt", "TraceParent", "EventKey", "Ordered" """;

    // Ordering (docs/ordering.md): an ordered delivery is not a candidate while an earlier
    // delivery of its order and profile is pending, retrying or in flight. Within one order,
    // ids follow commit order (ingest of one order is serialized by the order's version) and a
    // delivery leaves "pending" only once it is finished, so a claim that sees the earlier
    // one finished cannot be overtaken by it; retry and replay never make an earlier one
    // pending again while a later one is (DeliveryOperations). A stale snapshot only ever
    // shows an earlier one as still pending: it holds a delivery back, never lets one through.
    protected const string InTurn = """
         AND (NOT c0."Ordered" OR NOT EXISTS (
          SELECT 1 FROM deliveries e
          WHERE e."OrderKey" = c0."OrderKey" AND e."ProfileId" = c0."ProfileId" AND e."Status" = 'pending' AND e."Id" < c0."Id"))
        """;

    // On an ordered delivery's first claim: the earlier delivery it waited for, if any (the
    // last one that was still unfinished when this one came due), for the delivery page.
    protected const string WaitedFor = """
        CASE WHEN {0}"Ordered" AND {0}"Attempts" = 0 THEN (
          SELECT MAX(w."Id") FROM deliveries w
          WHERE w."OrderKey" = {0}"OrderKey" AND w."ProfileId" = {0}"ProfileId" AND w."Id" < {0}"Id" AND w."CompletedAt" > {0}"FirstDueAt")
        ELSE {0}"AfterId" END
        """;

    /// Row lock for reading an order that is about to be written (PostgreSQL: FOR UPDATE, so a
    /// concurrent ingest waits and then sees the new version; SQLite has one writer).
    protected virtual string LockRow => "";

    protected static string? ErrorOf(DeliveryOutcome o) => Text.ClipOrNull(o.Error, 1000);

    public async Task<IReadOnlyList<ClaimedDelivery>> ClaimAsync(Lease lease, int limit, IReadOnlyList<string> blockedEndpoints, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        using var turn = await gate.EnterAsync(ct);
        var connection = db.Database.GetDbConnection();
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            await using var transaction = ClaimSettings is null ? null : await connection.BeginTransactionAsync(ct);
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = ClaimSettings + ClaimSql(blockedEndpoints);
            Add(command, "owner", lease.Owner);
            Add(command, "now", Time(lease.Now));
            Add(command, "until", Time(lease.Until));
            Add(command, "limit", limit);
            for (var i = 0; i < blockedEndpoints.Count; i++)
            {
                Add(command, "b" + i, blockedEndpoints[i]);
            }
            var claimed = new List<ClaimedDelivery>(limit);
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                claimed.Add(new ClaimedDelivery(
                    reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4),
                    reader.IsDBNull(5) ? null : reader.GetString(5), reader.GetString(6), reader.GetString(7), reader.GetInt32(8),
                    ReadTime(reader, 9), reader.IsDBNull(10) ? null : reader.GetString(10), reader.GetInt64(11), reader.GetBoolean(12)));
            }
            await reader.DisposeAsync();
            if (transaction is not null)
            {
                await transaction.CommitAsync(ct);
            }
            return claimed;
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    /// Gives claimed deliveries back without an attempt (an endpoint on hold, a stopping
    /// process): due as they were, free for any worker.
    public Task ReleaseAsync(string owner, IReadOnlyCollection<long> ids, CancellationToken ct) => _leases.ReleaseAsync(owner, ids, ct);

    /// Records a batch of outcomes in one transaction: each delivery's new state, and for the
    /// deliveries whose lease was still ours, the attempt and (on a first attempt) the customer's
    /// history line. A worker that lost its lease leaves no trace: the worker that took over
    /// records its own attempt. Returns the ids that were recorded.
    public async Task<IReadOnlySet<long>> CompleteAsync(string owner, IReadOnlyList<DeliveryOutcome> outcomes, DateTimeOffset now, CancellationToken ct)
    {
        if (outcomes.Count == 0)
        {
            return new HashSet<long>();
        }
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        using var turn = await gate.EnterAsync(ct);
        // Captured values are merged into their orders here, read and written row by row; any
        // other batch may be written in one statement.
        if (!outcomes.Any(CapturesOntoOrder)
            && await CompleteInOneStatementAsync(db, owner, outcomes, now, ct) is { } done)
        {
            return done;
        }
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var connection = db.Database.GetDbConnection();
        var dbTransaction = transaction.GetDbTransaction();
        var recorded = await UpdateAsync(connection, dbTransaction, owner, outcomes, now, ct);

        // Captured values reach the order in the same transaction as the success they came
        // from; older events first, so a batch holding two of one order's ends with the newer.
        foreach (var outcome in outcomes
            .Where(o => CapturesOntoOrder(o) && recorded.Contains(o.Delivery.Id))
            .OrderBy(o => o.Delivery.EventKey))
        {
            var notes = await CaptureOntoOrderAsync(connection, dbTransaction, outcome, now, ct);
            outcome.Attempt!.Captures = AnswerCapture.ToJson(notes);
        }

        var attempts = outcomes.Where(o => o.Attempt is not null && recorded.Contains(o.Delivery.Id)).ToList();
        if (attempts.Count > 0)
        {
            await InsertAttemptsAsync(connection, dbTransaction, attempts.Select(o => o.Attempt!).ToList(), ct);
            var history = HistoryOf(attempts);
            if (history.Count > 0)
            {
                await InsertHistoryAsync(connection, dbTransaction, history, ct);
            }
        }
        await transaction.CommitAsync(ct);
        return recorded;
    }

    // An attempt that captured a value from its answer, to be merged into its order.
    private static bool CapturesOntoOrder(DeliveryOutcome o) => o.Captures is { } c && c.Any(n => n.Value is not null) && o.Attempt is not null;

    /// What CompleteAsync writes (a batch without captured values), in one statement: null
    /// where the database cannot, and CompleteAsync goes step by step.
    protected virtual Task<HashSet<long>?> CompleteInOneStatementAsync(
        PostbackDb db, string owner, IReadOnlyList<DeliveryOutcome> outcomes, DateTimeOffset now, CancellationToken ct) =>
        Task.FromResult<HashSet<long>?>(null);

    /// The first attempt is when an export "fires" (seed 001): it leaves its line in the
    /// customer's history, linking to the delivery and so to what was sent.
    protected static List<HistoryEntry> HistoryOf(IEnumerable<DeliveryOutcome> attempted) =>
        attempted.Where(o => o.Attempt!.Number == 1).Select(o => new HistoryEntry
        {
            OrganizationId = o.Delivery.OrganizationId,
            CustomerId = o.Delivery.CustomerId,
            OrderId = o.Delivery.OrderId,
            Kind = "export",
            DeliveryId = o.Delivery.Id,
            ProfileId = o.Delivery.ProfileId,
            CustomerType = o.Delivery.CustomerType,
            Message = $"Export fired ({o.Delivery.CustomerType}): {o.Attempt!.RequestMethod} {Text.Clip(o.Attempt.RequestUrl, 300)}",
            CreatedAt = o.Attempt.StartedAt,
        }).ToList();

    public async Task<string?> CoalesceAsync(string owner, ClaimedDelivery delivery, DateTimeOffset now, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        using var turn = await gate.EnterAsync(ct);
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var connection = db.Database.GetDbConnection();
        await using var coalesce = connection.CreateCommand();
        coalesce.Transaction = transaction.GetDbTransaction();
        coalesce.CommandText = """
            UPDATE deliveries SET "Status" = 'coalesced', "CoalescedIntoId" = @id, "CompletedAt" = @now, "LeaseOwner" = NULL, "LeaseUntil" = NULL,
              "LastError" = 'went out with delivery ' || CAST(@id AS TEXT)
            WHERE "OrderKey" = @order AND "ProfileId" = @profile AND "Status" = 'pending' AND "Id" > @id AND "Attempts" = 0
              AND "CreatedAt" <= @first_due AND ("LeaseUntil" IS NULL OR "LeaseUntil" < @now)
            RETURNING "Id", "CustomerType"
            """;
        Add(coalesce, "id", delivery.Id);
        Add(coalesce, "now", Time(now));
        Add(coalesce, "order", delivery.OrderKey);
        Add(coalesce, "profile", delivery.ProfileId);
        Add(coalesce, "first_due", Time(delivery.FirstDueAt));
        (long Id, string CustomerType)? latest = null;
        await using (var reader = await coalesce.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                var row = (reader.GetInt64(0), reader.GetString(1));
                if (latest is null || row.Item1 > latest.Value.Id)
                {
                    latest = row;
                }
            }
        }
        if (latest is null)
        {
            return null;
        }
        await using var take = connection.CreateCommand();
        take.Transaction = coalesce.Transaction;
        take.CommandText = """UPDATE deliveries SET "CustomerType" = @type WHERE "Id" = @id AND "LeaseOwner" = @owner""";
        Add(take, "type", latest.Value.CustomerType);
        Add(take, "id", delivery.Id);
        Add(take, "owner", owner);
        await take.ExecuteNonQueryAsync(ct);
        await transaction.CommitAsync(ct);
        return latest.Value.CustomerType;
    }

    private async Task<IReadOnlyList<CaptureNote>> CaptureOntoOrderAsync(
        DbConnection connection, DbTransaction transaction, DeliveryOutcome outcome, DateTimeOffset now, CancellationToken ct)
    {
        var delivery = outcome.Delivery;
        var source = new Orders.CaptureSource(delivery.EventKey, delivery.Id, delivery.ProfileId, outcome.Attempt!.StartedAt);
        // The order's version is checked as ingest checks it: a postback merged in meanwhile
        // makes this read again rather than overwrite what it wrote.
        for (var attempt = 1; ; attempt++)
        {
            await using var read = connection.CreateCommand();
            read.Transaction = transaction;
            read.CommandText = $"""SELECT "Data", "CaptureSources", "Version" FROM orders WHERE "Id" = @id{LockRow}""";
            Add(read, "id", delivery.OrderKey);
            string data;
            string? sources;
            long version;
            await using (var reader = await read.ExecuteReaderAsync(ct))
            {
                if (!await reader.ReadAsync(ct))
                {
                    return outcome.Captures!.Select(n => n.Value is null ? n : n with { Note = "not stored: the order no longer exists" }).ToList();
                }
                data = reader.GetString(0);
                sources = reader.IsDBNull(1) ? null : reader.GetString(1);
                version = reader.GetInt64(2);
            }
            var (newData, newSources, notes) = Orders.OrderCaptures.Apply(data, sources, outcome.Captures!, source);
            if (newData is null)
            {
                return notes;
            }
            await using var update = connection.CreateCommand();
            update.Transaction = transaction;
            update.CommandText = """
                UPDATE orders SET "Data" = @data, "CaptureSources" = @sources, "Version" = @version + 1, "UpdatedAt" = @now
                WHERE "Id" = @id AND "Version" = @version
                """;
            Add(update, "data", newData);
            Add(update, "sources", newSources!);
            Add(update, "version", version);
            Add(update, "now", Time(now));
            Add(update, "id", delivery.OrderKey);
            if (await update.ExecuteNonQueryAsync(ct) == 1 || attempt >= 10)
            {
                return notes;
            }
        }
    }

    protected static DbParameter Add(DbCommand command, string name, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = "@" + name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
        return parameter;
    }

    protected static string NotBlocked(IReadOnlyList<string> blocked) =>
        blocked.Count == 0 ? "" : $""" AND c0."Endpoint" NOT IN ({string.Join(", ", blocked.Select((_, i) => "@b" + i))})""";
}
