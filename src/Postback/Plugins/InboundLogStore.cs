namespace Postback.Plugins;

/// The inbound log's writes outside an ingest (Storage/Stores/InboundLogStore.cs): refused
/// postbacks, failures, the hourly count of refusals. An accepted postback's row is written
/// with its order, in the ingest's transaction.
public interface IInboundLogStore
{
    Task AddAsync(InboundLogEntry entry, CancellationToken ct);

    /// Sets the reason of the counting row `rowId` when it still exists, else stores `row` as
    /// a new one. Returns the id of the row written.
    Task<long> WriteCountAsync(long? rowId, InboundLogEntry row, CancellationToken ct);
}
