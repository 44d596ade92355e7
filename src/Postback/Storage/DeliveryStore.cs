using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Postback.Deliveries;
using Postback.Infrastructure;

namespace Postback.Storage;

/// The delivery queue's storage, set-based: claim a batch under a lease in one statement, finish
/// a batch of outcomes in one transaction. Claims skip rows another worker holds (PostgreSQL:
/// FOR UPDATE SKIP LOCKED; SQLite has one writer, so its single UPDATE is already exclusive),
/// and an outcome is only written while the lease is still ours: a worker that stalled past its
/// lease must not overwrite what the worker that took over recorded. What differs between the
/// databases is in Storage/Sqlite and Storage/Postgres.
public abstract class DeliveryStore(IServiceScopeFactory scopes, WriteGate gate) : IDeliveryStore
{
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
        "RequestHeaders", "RequestBody", "ResponseStatus", "ResponseHeaders", "ResponseBody", "Error", "Succeeded"
        """;

    protected const string HistoryColumns = """
        "OrganizationId", "CustomerId", "OrderId", "Kind", "DeliveryId", "ProfileId", "CustomerType", "Message", "CreatedAt"
        """;

    protected const string Columns = """ "Id", "OrganizationId", "ProfileId", "OrderKey", "OrderId", "CustomerId", "CustomerType", "Endpoint", "Attempts", "FirstDueAt" """;

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
                    ReadTime(reader, 9)));
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
    public async Task ReleaseAsync(string owner, IReadOnlyCollection<long> ids, CancellationToken ct)
    {
        if (ids.Count == 0)
        {
            return;
        }
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        using var turn = await gate.EnterAsync(ct);
        await db.Deliveries
            .Where(d => d.LeaseOwner == owner && ids.Contains(d.Id))
            .ExecuteUpdateAsync(s => s.SetProperty(d => d.LeaseOwner, (string?)null).SetProperty(d => d.LeaseUntil, (DateTimeOffset?)null), ct);
    }

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
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var connection = db.Database.GetDbConnection();
        var dbTransaction = transaction.GetDbTransaction();
        var recorded = await UpdateAsync(connection, dbTransaction, owner, outcomes, now, ct);

        var attempts = outcomes.Where(o => o.Attempt is not null && recorded.Contains(o.Delivery.Id)).ToList();
        if (attempts.Count > 0)
        {
            await InsertAttemptsAsync(connection, dbTransaction, attempts.Select(o => o.Attempt!).ToList(), ct);
            // The first attempt is when an export "fires" (seed 001): it leaves its line in the
            // customer's history, linking to the delivery and so to what was sent.
            var history = attempts.Where(o => o.Attempt!.Number == 1).Select(o => new HistoryEntry
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
            if (history.Count > 0)
            {
                await InsertHistoryAsync(connection, dbTransaction, history, ct);
            }
        }
        await transaction.CommitAsync(ct);
        return recorded;
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
        blocked.Count == 0 ? "" : $""" AND "Endpoint" NOT IN ({string.Join(", ", blocked.Select((_, i) => "@b" + i))})""";
}
