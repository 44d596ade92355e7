using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using Postback.Deliveries;
using Postback.Infrastructure;
using Postback.Storage.Stores;

namespace Postback.Storage.Postgres;

public sealed class PostgresDeliveryStore(IServiceScopeFactory scopes, WriteGate gate) : DeliveryStore(scopes, gate)
{
    // The claim always wants the partial index on pending due times: it yields the oldest
    // first and stops at the limit. On a young database the planner's statistics still say
    // "a few rows" and a cached or custom plan may scan and sort the table instead, which
    // cost 6 ms a claim instead of 0.3 ms in the benchmark.
    protected override string? ClaimSettings => "SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off; ";

    protected override string LockRow => " FOR UPDATE";

    // One statement for the whole batch: the outcomes go as arrays and are joined in.
    protected override async Task<HashSet<long>> UpdateAsync(
        DbConnection connection, DbTransaction transaction, string owner, IReadOnlyList<DeliveryOutcome> outcomes, DateTimeOffset now, CancellationToken ct)
    {
        await using var update = connection.CreateCommand();
        update.Transaction = transaction;
        update.CommandText = UpdateOutcomes(((NpgsqlCommand)update).Parameters, owner, outcomes, now);
        return await IdsAsync(update, ct);
    }

    // The update, the attempts and the history lines as one statement, one round trip instead of
    // four (begin and update, two inserts, commit). The attempts and lines go in for the
    // deliveries the update wrote, those whose lease was still ours.
    //
    // Its commit does not wait for the disk (synchronous_commit off, for this transaction only):
    // PostgreSQL writes it within a fraction of a second, and a crash of PostgreSQL itself (not of
    // the hub) in that window loses the outcome, so the delivery is sent again when its lease runs
    // out: at least once, as after a hub crash between a send and its outcome. The events and
    // deliveries an ingest stores still wait for the disk. Waiting here doubled the flushes the
    // ingest's commits queued behind once outcome batches took one round trip (bench/README.md).
    protected override async Task<HashSet<long>?> CompleteInOneStatementAsync(
        PostbackDb db, string owner, IReadOnlyList<DeliveryOutcome> outcomes, DateTimeOffset now, CancellationToken ct)
    {
        var attempted = outcomes.Where(o => o.Attempt is not null).ToList();
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            // PostgreSQL runs a batch as one transaction; a local setting ends with it.
            await using var batch = new NpgsqlBatch((NpgsqlConnection)db.Database.GetDbConnection());
            batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT set_config('synchronous_commit', 'off', true)"));
            var command = new NpgsqlBatchCommand();
            command.CommandText = $"""
                WITH u AS ({UpdateOutcomes(command.Parameters, owner, outcomes, now)}),
                a AS (
                  INSERT INTO delivery_attempts ({AttemptColumns})
                  SELECT x.* FROM {Attempts(command.Parameters, "a", attempted.Select(o => o.Attempt!).ToList())} WHERE x.c0 IN (SELECT "Id" FROM u)),
                h AS (
                  INSERT INTO customer_history ({HistoryColumns})
                  SELECT x.* FROM {History(command.Parameters, "h", HistoryOf(attempted))} WHERE x.c4 IN (SELECT "Id" FROM u))
                SELECT "Id" FROM u
                """;
            batch.BatchCommands.Add(command);
            var ids = new HashSet<long>();
            await using var reader = await batch.ExecuteReaderAsync(ct);
            await reader.NextResultAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                ids.Add(reader.GetInt64(0));
            }
            return ids;
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    protected override async Task InsertAttemptsAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<DeliveryAttempt> attempts, CancellationToken ct)
    {
        await using var insert = connection.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText = $"INSERT INTO delivery_attempts ({AttemptColumns}) SELECT x.* FROM {Attempts(((NpgsqlCommand)insert).Parameters, "p", attempts)}";
        await insert.ExecuteNonQueryAsync(ct);
    }

    protected override async Task InsertHistoryAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<HistoryEntry> entries, CancellationToken ct)
    {
        await using var insert = connection.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText = $"INSERT INTO customer_history ({HistoryColumns}) SELECT x.* FROM {History(((NpgsqlCommand)insert).Parameters, "p", entries)}";
        await insert.ExecuteNonQueryAsync(ct);
    }

    private static async Task<HashSet<long>> IdsAsync(DbCommand command, CancellationToken ct)
    {
        var ids = new HashSet<long>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            ids.Add(reader.GetInt64(0));
        }
        return ids;
    }

    // Each outcome written to its delivery where the lease is still ours, returning the ids
    // written; the arrays go as parameters.
    private static string UpdateOutcomes(NpgsqlParameterCollection parameters, string owner, IReadOnlyList<DeliveryOutcome> outcomes, DateTimeOffset now) => $"""
        UPDATE deliveries AS d SET {string.Format(SetOutcome, "v.")}
        FROM {Outcomes(parameters, owner, outcomes, now)} WHERE d."Id" = v.id AND d."LeaseOwner" = @owner
        RETURNING d."Id"
        """;

    // The outcomes as rows v(id, status, ...), and @owner: the arrays go as parameters.
    private static string Outcomes(NpgsqlParameterCollection parameters, string owner, IReadOnlyList<DeliveryOutcome> outcomes, DateTimeOffset now)
    {
        parameters.Add(new NpgsqlParameter("ids", outcomes.Select(o => o.Delivery.Id).ToArray()));
        parameters.Add(new NpgsqlParameter("statuses", outcomes.Select(o => o.Status).ToArray()));
        parameters.Add(new NpgsqlParameter("dues", outcomes.Select(o => o.NextDueAt?.ToUniversalTime()).ToArray()));
        parameters.Add(new NpgsqlParameter("tried", outcomes.Select(o => o.Attempt is null ? 0 : 1).ToArray()));
        parameters.Add(new NpgsqlParameter("attempt_ats", outcomes.Select(o => o.Attempt?.StartedAt.ToUniversalTime()).ToArray()));
        parameters.Add(new NpgsqlParameter("codes", outcomes.Select(o => o.StatusCode).ToArray()));
        parameters.Add(new NpgsqlParameter("errors", outcomes.Select(ErrorOf).ToArray()));
        parameters.Add(new NpgsqlParameter("completeds", outcomes.Select(o => o.Status == DeliveryStatus.Pending ? (DateTimeOffset?)null : now.ToUniversalTime()).ToArray()));
        parameters.Add(new NpgsqlParameter("owner", owner));
        return """
            unnest(@ids, @statuses, @dues, @tried, @attempt_ats, @codes, @errors, @completeds)
              AS v(id, status, due, tried, attempt_at, code, error, completed)
            """;
    }

    // The attempts as rows x(c0 = DeliveryId, ...) in AttemptColumns' order, their arrays as
    // parameters named prefix0, prefix1, ...
    private static string Attempts(NpgsqlParameterCollection parameters, string prefix, IReadOnlyList<DeliveryAttempt> attempts) => Rows(parameters, prefix,
        attempts.Select(a => a.DeliveryId).ToArray(),
        attempts.Select(a => a.OrganizationId).ToArray(),
        attempts.Select(a => a.Number).ToArray(),
        attempts.Select(a => a.StartedAt.ToUniversalTime()).ToArray(),
        attempts.Select(a => a.DurationMs).ToArray(),
        attempts.Select(a => a.RequestMethod).ToArray(),
        attempts.Select(a => a.RequestUrl).ToArray(),
        attempts.Select(a => a.RequestHeaders).ToArray(),
        attempts.Select(a => a.RequestBody).ToArray(),
        attempts.Select(a => a.ResponseStatus).ToArray(),
        attempts.Select(a => a.ResponseHeaders).ToArray(),
        attempts.Select(a => a.ResponseBody).ToArray(),
        attempts.Select(a => Text.ClipOrNull(a.Error, 1000)).ToArray(),
        attempts.Select(a => a.Succeeded).ToArray(),
        attempts.Select(a => a.Captures).ToArray());

    // The history lines as rows x(c0 .. c8, c4 = DeliveryId) in HistoryColumns' order.
    private static string History(NpgsqlParameterCollection parameters, string prefix, IReadOnlyList<HistoryEntry> entries) => Rows(parameters, prefix,
        entries.Select(h => h.OrganizationId).ToArray(),
        entries.Select(h => h.CustomerId).ToArray(),
        entries.Select(h => h.OrderId).ToArray(),
        entries.Select(h => h.Kind).ToArray(),
        entries.Select(h => h.DeliveryId).ToArray(),
        entries.Select(h => h.ProfileId).ToArray(),
        entries.Select(h => h.CustomerType).ToArray(),
        entries.Select(h => h.Message).ToArray(),
        entries.Select(h => h.CreatedAt.ToUniversalTime()).ToArray());

    private static string Rows(NpgsqlParameterCollection parameters, string prefix, params object[] columns)
    {
        for (var i = 0; i < columns.Length; i++)
        {
            parameters.Add(new NpgsqlParameter(prefix + i, columns[i]));
        }
        return $"unnest({string.Join(", ", columns.Select((_, i) => "@" + prefix + i))}) AS x({string.Join(", ", columns.Select((_, i) => "c" + i))})";
    }

    protected override object Time(DateTimeOffset value) => value.ToUniversalTime();

    protected override DateTimeOffset ReadTime(DbDataReader reader, int ordinal) => reader.GetFieldValue<DateTimeOffset>(ordinal);

    protected override string ClaimSql(IReadOnlyList<string> blocked) => $"""
        UPDATE deliveries AS d SET "LeaseOwner" = @owner, "LeaseUntil" = @until, "AfterId" = {string.Format(WaitedFor, "d.")}
        FROM (
          SELECT c0."Id" FROM deliveries c0
          WHERE c0."Status" = 'pending' AND c0."DueAt" <= @now AND (c0."LeaseUntil" IS NULL OR c0."LeaseUntil" < @now){NotBlocked(blocked)}{InTurn}
          ORDER BY c0."DueAt" LIMIT @limit
          FOR UPDATE SKIP LOCKED) AS c
        WHERE d."Id" = c."Id"
        RETURNING {string.Join(", ", Columns.Split(',').Select(c => "d." + c.Trim()))}
        """;
}
