using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Postback.Storage;

namespace Postback.Deliveries;

public sealed record ClaimedDelivery(
    long Id, long OrganizationId, long ProfileId, long OrderKey, long OrderId, string? CustomerId,
    string CustomerType, string Endpoint, int Attempts, DateTimeOffset FirstDueAt);

/// What an attempt, or a decision not to attempt, does to a delivery.
public sealed record DeliveryOutcome(ClaimedDelivery Delivery, string Status, DateTimeOffset? NextDueAt, DeliveryAttempt? Attempt, string? Error, int? StatusCode);

/// The queue's storage, set-based: claim a batch under a lease in one statement, finish a batch
/// of outcomes in one transaction. Claims skip rows another worker holds (PostgreSQL:
/// FOR UPDATE SKIP LOCKED; SQLite has one writer, so its single UPDATE is already exclusive),
/// and an outcome is only written while the lease is still ours: a worker that stalled past its
/// lease must not overwrite what the worker that took over recorded.
public abstract class DeliveryQueue
{
    public static DeliveryQueue For(PostbackDb db) => db is SqlitePostbackDb ? new SqliteQueue() : new PostgresQueue();

    protected abstract string ClaimSql(IReadOnlyList<string> blockedEndpoints);

    protected abstract object Time(DateTimeOffset value);

    protected abstract DateTimeOffset ReadTime(DbDataReader reader, int ordinal);

    public async Task<IReadOnlyList<ClaimedDelivery>> ClaimAsync(
        PostbackDb db, string owner, DateTimeOffset now, TimeSpan lease, int limit, IReadOnlyList<string> blockedEndpoints, CancellationToken ct)
    {
        var connection = db.Database.GetDbConnection();
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            await using var command = connection.CreateCommand();
            command.CommandText = ClaimSql(blockedEndpoints);
            Add(command, "owner", owner);
            Add(command, "now", Time(now));
            Add(command, "until", Time(now + lease));
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
            return claimed;
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    /// Gives claimed deliveries back without an attempt (an endpoint on hold, a stopping
    /// process): due as they were, free for any worker.
    public async Task ReleaseAsync(PostbackDb db, string owner, IReadOnlyCollection<long> ids, CancellationToken ct)
    {
        if (ids.Count == 0)
        {
            return;
        }
        await db.Deliveries
            .Where(d => d.LeaseOwner == owner && ids.Contains(d.Id))
            .ExecuteUpdateAsync(s => s.SetProperty(d => d.LeaseOwner, (string?)null).SetProperty(d => d.LeaseUntil, (DateTimeOffset?)null), ct);
    }

    public async Task CompleteAsync(PostbackDb db, string owner, IReadOnlyList<DeliveryOutcome> outcomes, DateTimeOffset now, CancellationToken ct)
    {
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var connection = db.Database.GetDbConnection();
        await using var update = connection.CreateCommand();
        update.Transaction = transaction.GetDbTransaction();
        update.CommandText = """
            UPDATE deliveries SET
              "Status" = @status, "DueAt" = COALESCE(@due, "DueAt"), "Attempts" = "Attempts" + @tried,
              "LastAttemptAt" = COALESCE(@attemptAt, "LastAttemptAt"), "LastStatusCode" = COALESCE(@code, "LastStatusCode"),
              "LastError" = @error, "CompletedAt" = @completed, "LeaseOwner" = NULL, "LeaseUntil" = NULL
            WHERE "Id" = @id AND "LeaseOwner" = @owner
            """;
        var status = Add(update, "status", "");
        var due = Add(update, "due", DBNull.Value);
        var tried = Add(update, "tried", 0);
        var attemptAt = Add(update, "attemptAt", DBNull.Value);
        var code = Add(update, "code", DBNull.Value);
        var error = Add(update, "error", DBNull.Value);
        var completed = Add(update, "completed", DBNull.Value);
        var id = Add(update, "id", 0L);
        Add(update, "owner", owner);

        foreach (var outcome in outcomes)
        {
            status.Value = outcome.Status;
            due.Value = outcome.NextDueAt is { } next ? Time(next) : DBNull.Value;
            tried.Value = outcome.Attempt is null ? 0 : 1;
            attemptAt.Value = outcome.Attempt is { } a ? Time(a.StartedAt) : DBNull.Value;
            code.Value = (object?)outcome.StatusCode ?? DBNull.Value;
            error.Value = outcome.Error is { } e ? Truncate(e, 1000) : DBNull.Value;
            completed.Value = outcome.Status == DeliveryStatus.Pending ? DBNull.Value : Time(now);
            id.Value = outcome.Delivery.Id;
            await update.ExecuteNonQueryAsync(ct);
        }

        foreach (var outcome in outcomes)
        {
            if (outcome.Attempt is not { } attempt)
            {
                continue;
            }
            db.DeliveryAttempts.Add(attempt);
            // The first attempt is when an export "fires" (seed 001): it leaves its line in the
            // customer's history, linking to the delivery and so to what was sent.
            if (attempt.Number == 1)
            {
                db.History.Add(new HistoryEntry
                {
                    OrganizationId = outcome.Delivery.OrganizationId,
                    CustomerId = outcome.Delivery.CustomerId,
                    OrderId = outcome.Delivery.OrderId,
                    Kind = "export",
                    DeliveryId = outcome.Delivery.Id,
                    ProfileId = outcome.Delivery.ProfileId,
                    CustomerType = outcome.Delivery.CustomerType,
                    Message = $"Export fired ({outcome.Delivery.CustomerType}): {attempt.RequestMethod} {Truncate(attempt.RequestUrl, 300)}",
                    CreatedAt = attempt.StartedAt,
                });
            }
        }
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        db.ChangeTracker.Clear();
    }

    private static string Truncate(string s, int max) => s.Length <= max ? s : s[..max];

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

    private const string Columns = """ "Id", "OrganizationId", "ProfileId", "OrderKey", "OrderId", "CustomerId", "CustomerType", "Endpoint", "Attempts", "FirstDueAt" """;

    private sealed class SqliteQueue : DeliveryQueue
    {
        // Matches SqlitePostbackDb's storage of times: UTC ticks, to the microsecond.
        protected override object Time(DateTimeOffset value) => value.UtcTicks - (value.UtcTicks % 10);

        protected override DateTimeOffset ReadTime(DbDataReader reader, int ordinal) => new(reader.GetInt64(ordinal), TimeSpan.Zero);

        protected override string ClaimSql(IReadOnlyList<string> blocked) => $"""
            UPDATE deliveries SET "LeaseOwner" = @owner, "LeaseUntil" = @until
            WHERE "Id" IN (
              SELECT "Id" FROM deliveries
              WHERE "Status" = 'pending' AND "DueAt" <= @now AND ("LeaseUntil" IS NULL OR "LeaseUntil" < @now){NotBlocked(blocked)}
              ORDER BY "DueAt" LIMIT @limit)
            RETURNING {Columns}
            """;
    }

    private sealed class PostgresQueue : DeliveryQueue
    {
        protected override object Time(DateTimeOffset value) => value.ToUniversalTime();

        protected override DateTimeOffset ReadTime(DbDataReader reader, int ordinal) => reader.GetFieldValue<DateTimeOffset>(ordinal);

        protected override string ClaimSql(IReadOnlyList<string> blocked) => $"""
            UPDATE deliveries AS d SET "LeaseOwner" = @owner, "LeaseUntil" = @until
            FROM (
              SELECT "Id" FROM deliveries
              WHERE "Status" = 'pending' AND "DueAt" <= @now AND ("LeaseUntil" IS NULL OR "LeaseUntil" < @now){NotBlocked(blocked)}
              ORDER BY "DueAt" LIMIT @limit
              FOR UPDATE SKIP LOCKED) AS c
            WHERE d."Id" = c."Id"
            RETURNING {string.Join(", ", Columns.Split(',').Select(c => "d." + c.Trim()))}
            """;
    }
}
