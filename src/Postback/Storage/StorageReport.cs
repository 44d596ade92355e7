using System.Data.Common;
using Microsoft.EntityFrameworkCore;

namespace Postback.Storage;

public sealed record TableRows(string Table, long Rows);

/// Rows per table and the database's size (GET /api/v1/storage). Cheap on both databases:
/// SQLite counts (in-process, over the smallest index) and reads its page counts; PostgreSQL
/// reads its statistics (live tuples, maintained as rows change) rather than counting, so the
/// row counts there are estimates a second or so behind.
public sealed record StorageReport(string Provider, long DatabaseBytes, long? FreeBytes, bool RowsEstimated, IReadOnlyList<TableRows> Tables)
{
    public static async Task<StorageReport> ReadAsync(PostbackDb db, CancellationToken ct)
    {
        var tables = db.Model.GetEntityTypes().Select(t => t.GetTableName()).OfType<string>().Distinct().Order(StringComparer.Ordinal).ToList();
        var connection = db.Database.GetDbConnection();
        var opened = connection.State != System.Data.ConnectionState.Open;
        if (opened)
        {
            await connection.OpenAsync(ct);
        }
        try
        {
            return db is SqlitePostbackDb ? await SqliteAsync(connection, tables, ct) : await PostgresAsync(connection, tables, ct);
        }
        finally
        {
            if (opened)
            {
                await connection.CloseAsync();
            }
        }
    }

    private static async Task<StorageReport> SqliteAsync(DbConnection connection, List<string> tables, CancellationToken ct)
    {
        var rows = new List<TableRows>();
        foreach (var table in tables)
        {
            // Table names come from the model, never from a request.
            rows.Add(new TableRows(table, await ScalarAsync(connection, $"SELECT COUNT(*) FROM \"{table}\"", ct)));
        }
        var pageSize = await ScalarAsync(connection, "PRAGMA page_size", ct);
        var pages = await ScalarAsync(connection, "PRAGMA page_count", ct);
        var free = await ScalarAsync(connection, "PRAGMA freelist_count", ct);
        return new StorageReport("sqlite", pages * pageSize, free * pageSize, false, rows);
    }

    private static async Task<StorageReport> PostgresAsync(DbConnection connection, List<string> tables, CancellationToken ct)
    {
        var live = new Dictionary<string, long>(StringComparer.Ordinal);
        await using (var command = connection.CreateCommand())
        {
            command.CommandText = "SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE schemaname = current_schema()";
            await using var reader = await command.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                live[reader.GetString(0)] = reader.GetInt64(1);
            }
        }
        var rows = tables.Select(t => new TableRows(t, live.GetValueOrDefault(t))).ToList();
        var size = await ScalarAsync(connection, "SELECT pg_database_size(current_database())", ct);
        return new StorageReport("postgres", size, null, true, rows);
    }

    private static async Task<long> ScalarAsync(DbConnection connection, string sql, CancellationToken ct)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture);
    }
}
