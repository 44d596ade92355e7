using Postback.Infrastructure;

namespace Postback.FileExports;

/// What one attempt of a run did: its result, when it is due again after a failure (null: never,
/// it failed for good), and the profile's name for the alert e-mails.
public sealed record FileRunOutcome(FileRun Run, RunResult Result, DateTimeOffset? RetryAt, string ProfileName) : ILeased
{
    public long Id => Run.Id;

    /// The run's status once this is recorded.
    public string Status => Result.Error is null ? FileRunStatus.Succeeded
        : RetryAt is not null && !Result.Permanent ? FileRunStatus.Pending
        : FileRunStatus.Failed;
}

/// The file-run queue's storage (Storage/FileRunLeaseStore.cs, the same on both databases). A
/// claim counts an attempt and is given back uncounted by a release; a run failed for good
/// queues its alert e-mails in the same transaction; every write after the claim is made only
/// while the caller still holds the lease.
public interface IFileRunLeaseStore : ILeaseStore<FileRun, FileRunOutcome>;
