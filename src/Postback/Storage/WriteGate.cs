using System.Data.Common;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Postback.Storage;

/// SQLite has one writer. When two writers collide, Microsoft.Data.Sqlite retries a busy
/// database by sleeping 150 ms a time, which turned a 1 ms commit into seconds of latency under
/// load (bench/README.md). The hot writers — event ingest and the delivery queue — therefore
/// take turns through this gate in-process instead, and never collide. On PostgreSQL the gate
/// is open: row locks do the work there.
public sealed class WriteGate(bool serialize)
{
    private readonly SemaphoreSlim? _gate = serialize ? new SemaphoreSlim(1, 1) : null;
    private int _waiting;

    // The writers waiting for their turn now: what a test waits on, rather than on time.
    internal int Waiting => Volatile.Read(ref _waiting);

    public async ValueTask<Releaser> EnterAsync(CancellationToken ct)
    {
        if (_gate is not null && !_gate.Wait(0, ct))
        {
            Interlocked.Increment(ref _waiting);
            try
            {
                await _gate.WaitAsync(ct);
            }
            finally
            {
                Interlocked.Decrement(ref _waiting);
            }
        }
        return new Releaser(_gate);
    }

    public readonly struct Releaser(SemaphoreSlim? gate) : IDisposable
    {
        public void Dispose() => gate?.Release();
    }
}

/// Lets SQLite itself wait (in short steps) for a writer outside the gate — an operator's
/// edit, another tool — rather than failing or sleeping 150 ms. And turns secure_delete on:
/// deleted rows (a customer's erasure, retention) are overwritten with zeros rather than left
/// readable in free pages of the file.
public sealed class SqliteBusyTimeout : DbConnectionInterceptor
{
    private const string Pragmas = "PRAGMA busy_timeout = 10000; PRAGMA secure_delete = ON;";

    public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData)
    {
        using var command = connection.CreateCommand();
        command.CommandText = Pragmas;
        command.ExecuteNonQuery();
    }

    public override async Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken ct = default)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = Pragmas;
        await command.ExecuteNonQueryAsync(ct);
    }
}
