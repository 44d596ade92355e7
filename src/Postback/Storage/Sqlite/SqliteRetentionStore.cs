using Microsoft.EntityFrameworkCore;
using Postback.Storage.Stores;

namespace Postback.Storage.Sqlite;

public sealed class SqliteRetentionStore(IServiceScopeFactory scopes, WriteGate gate) : RetentionStore(scopes, gate)
{
    /// The erased rows' earlier versions still sit in the write-ahead log until it is
    /// checkpointed and truncated. Best effort, waiting at most a second for readers (the
    /// write gate is held meanwhile); otherwise the log's frames are overwritten as it cycles.
    protected override async Task AfterErasureAsync(PostbackDb db)
    {
        // One open connection for the three statements: every open sets the usual timeout again.
        await db.Database.OpenConnectionAsync();
        try
        {
            await db.Database.ExecuteSqlRawAsync("PRAGMA busy_timeout = 1000;");
            await db.Database.ExecuteSqlRawAsync("PRAGMA wal_checkpoint(TRUNCATE);");
            await db.Database.ExecuteSqlRawAsync("PRAGMA busy_timeout = 10000;");
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }
}
