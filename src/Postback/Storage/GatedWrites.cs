using Microsoft.EntityFrameworkCore.Infrastructure;

namespace Postback.Storage;

/// The writes features make through their request's own context (an operator's edit of a
/// profile, a campaign, the confirmation settings; the API and the admin pages share the
/// operations that make them) take their turn at the write gate like the stores' writes, so on
/// SQLite they never collide with the ingest or a queue. The gate is the hub's, found through
/// the application's services as PostbackDb finds the request it audits; a context made outside
/// a hub (a tool, a storage test) has none, and writes at once.
public static class GatedWrites
{
    private static readonly WriteGate NoGate = new(serialize: false);

    public static async Task<int> SaveChangesInTurnAsync(this PostbackDb db, CancellationToken ct)
    {
        using (await GateOf(db).EnterAsync(ct))
        {
            return await db.SaveChangesAsync(ct);
        }
    }

    /// A write of more than one statement (a transaction of its own around a SaveChanges and an
    /// update), all of it in one turn.
    public static async Task<T> WriteInTurnAsync<T>(this PostbackDb db, Func<Task<T>> write, CancellationToken ct)
    {
        using (await GateOf(db).EnterAsync(ct))
        {
            return await write();
        }
    }

    public static async Task WriteInTurnAsync(this PostbackDb db, Func<Task> write, CancellationToken ct)
    {
        using (await GateOf(db).EnterAsync(ct))
        {
            await write();
        }
    }

    private static WriteGate GateOf(PostbackDb db) =>
        db.GetService<IDbContextOptions>().FindExtension<CoreOptionsExtension>()?.ApplicationServiceProvider?.GetService<WriteGate>() ?? NoGate;
}
