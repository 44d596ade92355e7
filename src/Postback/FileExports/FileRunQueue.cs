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

/// The file-run queue's storage (Storage/Stores/FileRunLeaseStore.cs, the same on both databases). A
/// claim counts an attempt and is given back uncounted by a release; a run failed for good
/// queues its alert e-mails in the same transaction; every write after the claim is made only
/// while the caller still holds the lease.
public interface IFileRunLeaseStore : ILeaseStore<FileRun, FileRunOutcome>
{
    /// Creates the runs whose scheduled time has passed for every enabled file profile
    /// (FileRunSchedule.DueRuns); returns how many it created. Another process scheduling the
    /// same day at the same moment is no error: the unique index keeps one.
    Task<int> ScheduleDueAsync(DateTimeOffset now, CancellationToken ct);

    /// A manual run of a day for each route (or one): a new run, or the day's run made due now
    /// again (a new round; the same row and the same file). A run being uploaded right now is
    /// left to finish and returned as it is.
    Task<List<FileRun>> RequestAsync(ExportProfiles.ExportProfile profile, DateOnly day, int? routeIndex, DateTimeOffset now, CancellationToken ct);

    /// Clears the kept files of runs finished more than `keep` ago.
    Task<int> ForgetFilesAsync(DateTimeOffset now, TimeSpan keep, CancellationToken ct);
}
