using Microsoft.EntityFrameworkCore;
using Postback.Plugins;

namespace Postback.Storage.Stores;

/// The inbound log's writes outside an ingest (refused postbacks, failures, the hourly count
/// of refusals), each one short write under the write gate. An accepted postback's row is
/// written with its order, in the ingest's transaction.
public sealed class InboundLogStore(IServiceScopeFactory scopes, WriteGate gate) : IInboundLogStore
{
    public async Task AddAsync(InboundLogEntry entry, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        db.InboundLog.Add(entry);
        using (await gate.EnterAsync(ct))
        {
            await db.SaveChangesAsync(ct);
        }
    }

    /// Sets the reason of the counting row `rowId` when it still exists, else stores `row` as
    /// a new one. Returns the id of the row written.
    public async Task<long> WriteCountAsync(long? rowId, InboundLogEntry row, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        using (await gate.EnterAsync(ct))
        {
            if (rowId is { } id
                && await db.InboundLog.Where(e => e.Id == id).ExecuteUpdateAsync(u => u.SetProperty(e => e.Reason, row.Reason), ct) == 1)
            {
                return id;
            }
            db.InboundLog.Add(row);
            await db.SaveChangesAsync(ct);
            return row.Id;
        }
    }
}
