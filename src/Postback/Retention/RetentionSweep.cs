using Postback.Infrastructure;

namespace Postback.Retention;

/// One retention sweep: every kind of aged data, batch after batch, until none is left. Only
/// one process sweeps at a time: the sweep is a job on the lease-queue engine (RetentionWorker)
/// whose lease is the job_leases row (Storage/Stores/JobLeaseStore.cs), renewed as the batches go; a
/// process that loses it (it stalled longer than the lease) stops where it is.
public sealed class RetentionSweep(IRetentionStore store, IJobLeaseStores jobs, TimeProvider time, RetentionOptions options, ILogger<RetentionSweep> log)
{
    public static readonly TimeSpan LeaseFor = TimeSpan.FromMinutes(2);

    // The lease is renewed once this much of it has gone, not after every batch: on SQLite each
    // renewal is a write transaction of its own.
    private static readonly TimeSpan RenewAfter = LeaseFor / 4;

    private readonly string _owner = LeaseQueue<JobRun, JobRun>.NewOwner("r:");

    public RetentionOptions Options => options;

    /// The sweep's place in job_leases: due every SweepInterval, held by one process at a time.
    public IJobLeaseStore Jobs => field ??= jobs.For(RetentionModel.SweepLease, options.SweepInterval);

    /// When the last sweep of this process finished, and what it removed (one reference,
    /// replaced whole, so a reader never sees half of it).
    public SweepReport? Last { get; private set; }

    /// Runs one sweep now, due or not (the worker runs the due ones). Returns null when another
    /// process holds the lease.
    public async Task<RemovedCounts?> RunOnceAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        if (!await Jobs.TakeNowAsync(new Lease(_owner, now, now + LeaseFor), ct))
        {
            return null;
        }
        RemovedCounts removed;
        try
        {
            removed = await SweepAsync(async c =>
            {
                var at = time.GetUtcNow();
                return (await Jobs.RenewAsync(new Lease(_owner, at, at + LeaseFor), [1], c)).Count == 1;
            }, ct);
        }
        catch
        {
            await ReleaseAsync();
            throw;
        }
        await Jobs.CompleteAsync(_owner, [new JobRun(Jobs.Name)], time.GetUtcNow(), CancellationToken.None);
        return removed;
    }

    private async Task ReleaseAsync()
    {
        try
        {
            await Jobs.ReleaseAsync(_owner, [1], CancellationToken.None);
        }
        catch (Exception e)
        {
            // It expires by itself.
            log.LogWarning(e, "Could not release the retention lease");
        }
    }

    /// The sweep itself, under a lease the caller holds: `keepLease` renews it and says whether
    /// it is still ours (false: stop, another process has taken over).
    public async Task<RemovedCounts> SweepAsync(Func<CancellationToken, Task<bool>> keepLease, CancellationToken ct)
    {
        var removed = new RemovedCounts();
        var startedAt = time.GetUtcNow();
        var renewedAt = startedAt;
        async Task RepeatAsync(Func<Task<bool>> batch)
        {
            while (await batch())
            {
                ct.ThrowIfCancellationRequested();
                if (time.GetUtcNow() - renewedAt >= RenewAfter)
                {
                    if (!await keepLease(ct))
                    {
                        throw new LeaseLostException();
                    }
                    renewedAt = time.GetUtcNow();
                }
            }
        }
        var now = startedAt;
        var batch = options.BatchSize;
        if (options.FinishedDeliveries is { } finished)
        {
            await RepeatAsync(async () =>
            {
                var r = await store.DeleteFinishedDeliveriesAsync(now - finished, now, batch, ct);
                removed.Add(r);
                return r.Deliveries + r.DeliveryAttempts > 0 || r.HistoryLinesExpired > 0;
            });
            // File runs are finished work of the same kind: the record of a day's upload and
            // the file kept for download go after the same period.
            await RepeatAsync(async () =>
            {
                var n = await store.DeleteFinishedFileRunsAsync(now - finished, now, batch, ct);
                removed.FileRuns += n;
                return n > 0;
            });
            await RepeatAsync(async () =>
            {
                var n = await store.DeleteFinishedEmailsAsync(now - finished, batch, ct);
                removed.AlertEmails += n;
                return n > 0;
            });
        }
        if (options.Orders is { } idle)
        {
            await RepeatAsync(async () =>
            {
                var r = await store.DeleteIdleOrdersAsync(now - idle, now, batch, ct);
                removed.Add(r);
                return r.Orders > 0;
            });
        }
        if (options.InboundLog is { } inbound)
        {
            await RepeatAsync(async () =>
            {
                var n = await store.DeleteInboundLogAsync(now - inbound, batch, ct);
                removed.InboundLogEntries += n;
                return n > 0;
            });
        }
        Last = new SweepReport(startedAt, time.GetUtcNow(), removed);
        if (removed.Total > 0)
        {
            log.LogInformation(
                "Retention removed {Deliveries} deliveries with {Attempts} attempts, {FileRuns} file runs, {Orders} orders with {Events} events, {Confirmations} confirmations, {Emails} alert e-mails and {Inbound} inbound log entries",
                removed.Deliveries, removed.DeliveryAttempts, removed.FileRuns, removed.Orders, removed.Events, removed.Confirmations, removed.AlertEmails, removed.InboundLogEntries);
        }
        return removed;
    }

    public sealed class LeaseLostException() : Exception("Another process took over the retention lease mid-sweep.");
}

/// Runs the sweep every SweepInterval on the lease-queue engine: a queue of one job, the
/// job_leases row, due SweepInterval after the last sweep of any process ended, held by one
/// process at a time. A process that dies mid-sweep leaves the lease to run out, and the next
/// process to poll resumes the work (every delete is conditional, so nothing is done twice);
/// one that stops gives the job back, due at once.
public sealed class RetentionWorker(RetentionSweep sweep, TimeProvider time, RetentionWarnings warnings, ILogger<RetentionWorker> log)
    : BackgroundService, ILeaseWork<JobRun, JobRun>
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        foreach (var warning in warnings.Texts)
        {
            log.LogWarning("{Warning}", warning);
        }
        var o = sweep.Options;
        log.LogInformation("Retention: finished deliveries {Finished}, orders {Orders}, inbound log {Inbound}, a sweep every {Interval}",
            RetentionOptions.Describe(o.FinishedDeliveries), RetentionOptions.Describe(o.Orders), RetentionOptions.Describe(o.InboundLog),
            RetentionOptions.Describe(o.SweepInterval));
        var queue = new LeaseQueue<JobRun, JobRun>(new LeaseQueueSettings
        {
            Work = "Retention sweep",
            OwnerPrefix = "r:",
            MaxInFlight = 1,
            ClaimBatch = 1,
            Lease = RetentionSweep.LeaseFor,
            // Another process may have swept meanwhile (the row says when the next is due): look
            // at least once a minute, on the clock tests move on.
            Poll = o.SweepInterval < TimeSpan.FromMinutes(1) ? o.SweepInterval : TimeSpan.FromMinutes(1),
            PollOnClock = true,
            // A sweep stops between two batches when asked; the job comes back due at once.
            Drain = TimeSpan.Zero,
        }, new NotBefore(sweep.Jobs, time.GetUtcNow() + o.SweepInterval), this, new WakeSignal(), time, log);
        return queue.RunAsync(stoppingToken);
    }

    public async Task DispatchAsync(IReadOnlyList<JobRun> claimed, LeaseDispatch<JobRun> dispatch, CancellationToken ct)
    {
        foreach (var run in claimed)
        {
            await dispatch.StartAsync(run.Id, async abort =>
            {
                try
                {
                    await sweep.SweepAsync(async c => (await dispatch.RenewAsync([run.Id], c)).Count == 1, abort);
                }
                catch (RetentionSweep.LeaseLostException e)
                {
                    // Another process goes on; writing this run's end is refused as stale.
                    log.LogWarning("{Message}", e.Message);
                }
                catch (Exception e) when (!abort.IsCancellationRequested)
                {
                    // What is left is found again by the next sweep.
                    log.LogError(e, "Retention sweep failed");
                }
                return run;
            });
        }
    }

    // The first sweep of a process is one interval after it started, not during start-up: a
    // restart (an upgrade, a crash loop) adds no sweep to start-up's work. After that the row's
    // due time decides, whichever process swept last.
    private sealed class NotBefore(IJobLeaseStore jobs, DateTimeOffset from) : ILeaseStore<JobRun, JobRun>
    {
        public Task<IReadOnlyList<JobRun>> ClaimAsync(Lease lease, int limit, CancellationToken ct) =>
            lease.Now < from ? Task.FromResult<IReadOnlyList<JobRun>>([]) : jobs.ClaimAsync(lease, limit, ct);

        public Task<IReadOnlySet<long>> CompleteAsync(string owner, IReadOnlyList<JobRun> outcomes, DateTimeOffset now, CancellationToken ct) =>
            jobs.CompleteAsync(owner, outcomes, now, ct);

        public Task ReleaseAsync(string owner, IReadOnlyCollection<long> ids, CancellationToken ct) => jobs.ReleaseAsync(owner, ids, ct);

        public Task<IReadOnlySet<long>> RenewAsync(Lease lease, IReadOnlyCollection<long> ids, CancellationToken ct) => jobs.RenewAsync(lease, ids, ct);
    }
}

public sealed record SweepReport(DateTimeOffset StartedAt, DateTimeOffset At, RemovedCounts Removed);

/// What reading the options had to say (a deprecated key in use), logged once a logger exists.
public sealed record RetentionWarnings(IReadOnlyList<string> Texts);
