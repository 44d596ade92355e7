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

    // Set while this flow holds its turn: a gated write made inside another's turn (an
    // organization created with its first admin, in one transaction) runs in that turn rather
    // than waiting for the gate it holds.
    private static readonly AsyncLocal<bool> Holding = new();

    public static Task<int> SaveChangesInTurnAsync(this PostbackDb db, CancellationToken ct) =>
        db.WriteInTurnAsync(() => db.SaveChangesAsync(ct), ct);

    /// A write of more than one statement (a transaction of its own around a SaveChanges and an
    /// update), or a single ExecuteUpdate/ExecuteDelete, all of it in one turn.
    public static async Task<T> WriteInTurnAsync<T>(this PostbackDb db, Func<Task<T>> write, CancellationToken ct)
    {
        if (Holding.Value)
        {
            return await write();
        }
        using (await GateOf(db).EnterAsync(ct))
        {
            Holding.Value = true;
            try
            {
                return await write();
            }
            finally
            {
                Holding.Value = false;
            }
        }
    }

    public static Task WriteInTurnAsync(this PostbackDb db, Func<Task> write, CancellationToken ct) =>
        db.WriteInTurnAsync(async () =>
        {
            await write();
            return true;
        }, ct);

    private static WriteGate GateOf(PostbackDb db) => db.HubService<WriteGate>() ?? NoGate;
}
