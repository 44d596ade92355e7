namespace Postback.Storage;

/// Rows a save adds about its own change, in the change's transaction: the audit log
/// (Team/AuditLog.cs) is one. PostbackDb takes it from the application's services on every
/// SaveChangesAsync, so it is a singleton, and a save it has nothing to add to costs one call.
public interface ISaveHook
{
    /// Before the change is saved (its changes detected): what to add once it is, or null when
    /// there is nothing (not an operator's request, or nothing it records changed).
    ISaveFollowUp? Inspect(PostbackDb db);
}

public interface ISaveFollowUp
{
    /// After the change is saved (so it has its ids), inside its transaction: adds the rows,
    /// which the same save stores next, before the transaction commits.
    void Add(PostbackDb db);
}
