using System.Data.Common;
using Postback.Deliveries;
using Postback.Infrastructure;
using Postback.Storage.Stores;

namespace Postback.Storage.Sqlite;

public sealed class SqliteDeliveryStore(IServiceScopeFactory scopes, WriteGate gate) : DeliveryStore(scopes, gate)
{
    // One prepared statement run per outcome: SQLite is in-process, so a statement costs
    // microseconds, and the whole batch is one transaction (one fsync).
    protected override async Task<HashSet<long>> UpdateAsync(
        DbConnection connection, DbTransaction transaction, string owner, IReadOnlyList<DeliveryOutcome> outcomes, DateTimeOffset now, CancellationToken ct)
    {
        var recorded = new HashSet<long>();
        await using var update = connection.CreateCommand();
        update.Transaction = transaction;
        update.CommandText = $"""UPDATE deliveries AS d SET {string.Format(SetOutcome, "@")} WHERE d."Id" = @id AND d."LeaseOwner" = @owner""";
        var status = Add(update, "status", "");
        var due = Add(update, "due", DBNull.Value);
        var tried = Add(update, "tried", 0);
        var attemptAt = Add(update, "attempt_at", DBNull.Value);
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
            error.Value = (object?)ErrorOf(outcome) ?? DBNull.Value;
            completed.Value = outcome.Status == DeliveryStatus.Pending ? DBNull.Value : Time(now);
            id.Value = outcome.Delivery.Id;
            if (await update.ExecuteNonQueryAsync(ct) == 1)
            {
                recorded.Add(outcome.Delivery.Id);
            }
        }
        return recorded;
    }

    protected override async Task InsertAttemptsAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<DeliveryAttempt> attempts, CancellationToken ct)
    {
        await using var insert = connection.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText = $"""
            INSERT INTO delivery_attempts ({AttemptColumns})
            VALUES (@p0, @p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9, @p10, @p11, @p12, @p13, @p14)
            """;
        var p = Enumerable.Range(0, 15).Select(i => Add(insert, "p" + i, DBNull.Value)).ToArray();
        foreach (var a in attempts)
        {
            p[0].Value = a.DeliveryId;
            p[1].Value = a.OrganizationId;
            p[2].Value = a.Number;
            p[3].Value = Time(a.StartedAt);
            p[4].Value = a.DurationMs;
            p[5].Value = a.RequestMethod;
            p[6].Value = a.RequestUrl;
            p[7].Value = a.RequestHeaders;
            p[8].Value = (object?)a.RequestBody ?? DBNull.Value;
            p[9].Value = (object?)a.ResponseStatus ?? DBNull.Value;
            p[10].Value = (object?)a.ResponseHeaders ?? DBNull.Value;
            p[11].Value = (object?)a.ResponseBody ?? DBNull.Value;
            p[12].Value = (object?)Text.ClipOrNull(a.Error, 1000) ?? DBNull.Value;
            p[13].Value = a.Succeeded;
            p[14].Value = (object?)a.Captures ?? DBNull.Value;
            await insert.ExecuteNonQueryAsync(ct);
        }
    }

    protected override async Task InsertHistoryAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<HistoryEntry> entries, CancellationToken ct)
    {
        await using var insert = connection.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText = $"""
            INSERT INTO customer_history ({HistoryColumns})
            VALUES (@p0, @p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8)
            """;
        var p = Enumerable.Range(0, 9).Select(i => Add(insert, "p" + i, DBNull.Value)).ToArray();
        foreach (var h in entries)
        {
            p[0].Value = h.OrganizationId;
            p[1].Value = (object?)h.CustomerId ?? DBNull.Value;
            p[2].Value = h.OrderId;
            p[3].Value = h.Kind;
            p[4].Value = (object?)h.DeliveryId ?? DBNull.Value;
            p[5].Value = (object?)h.ProfileId ?? DBNull.Value;
            p[6].Value = (object?)h.CustomerType ?? DBNull.Value;
            p[7].Value = h.Message;
            p[8].Value = Time(h.CreatedAt);
            await insert.ExecuteNonQueryAsync(ct);
        }
    }

    // Matches SqlitePostbackDb's storage of times: UTC ticks, to the microsecond.
    protected override object Time(DateTimeOffset value) => StorageTime.ToTicks(value);

    protected override DateTimeOffset ReadTime(DbDataReader reader, int ordinal) => StorageTime.FromTicks(reader.GetInt64(ordinal));

    protected override string ClaimSql(IReadOnlyList<string> blocked) => $"""
        UPDATE deliveries AS d SET "LeaseOwner" = @owner, "LeaseUntil" = @until, "AfterId" = {string.Format(WaitedFor, "d.")}
        WHERE d."Id" IN (
          SELECT c0."Id" FROM deliveries c0
          WHERE c0."Status" = 'pending' AND c0."DueAt" <= @now AND (c0."LeaseUntil" IS NULL OR c0."LeaseUntil" < @now){NotBlocked(blocked)}{InTurn}
          ORDER BY c0."DueAt" LIMIT @limit)
        RETURNING {Columns}
        """;
}
