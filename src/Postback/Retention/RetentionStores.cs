using Postback.Infrastructure;

namespace Postback.Retention;

/// The deletes behind retention, a bounded batch at a time, and a customer's erasure
/// (Storage/Stores/RetentionStore.cs, one implementation per database).
public interface IRetentionStore
{
    Task<RemovedCounts> DeleteFinishedDeliveriesAsync(DateTimeOffset cutoff, DateTimeOffset now, int batch, CancellationToken ct);
    Task<int> DeleteFinishedFileRunsAsync(DateTimeOffset cutoff, DateTimeOffset now, int batch, CancellationToken ct);
    Task<int> DeleteInboundLogAsync(DateTimeOffset cutoff, int batch, CancellationToken ct);
    Task<int> DeleteFinishedEmailsAsync(DateTimeOffset cutoff, int batch, CancellationToken ct);
    Task<RemovedCounts> DeleteIdleOrdersAsync(DateTimeOffset cutoff, DateTimeOffset now, int batch, CancellationToken ct);
    Task<ErasureCounts> EraseCustomerAsync(long organizationId, string customerId, DateTimeOffset now, CancellationToken ct);
}

/// One run of a named job (a row of job_leases). A job is a queue of one item: its id is
/// always 1, the name says which row.
public sealed record JobRun(string Name) : ILeased
{
    public long Id => 1;
}

/// Hands out the lease queues of named jobs (Storage/Stores/JobLeaseStore.cs).
public interface IJobLeaseStores
{
    IJobLeaseStore For(string name, TimeSpan interval);
}

/// A job that one process at a time runs, every `interval`, across all hub processes sharing
/// the database: a lease queue of one row in job_leases.
public interface IJobLeaseStore : ILeaseStore<JobRun, JobRun>
{
    string Name { get; }

    /// Takes the job now if no one holds it, due or not (a run asked for explicitly).
    Task<bool> TakeNowAsync(Lease lease, CancellationToken ct);
}
