using Microsoft.EntityFrameworkCore;
using Postback.Storage;

namespace Postback.Retention;

/// One retention sweep: every kind of aged data, batch after batch, until none is left. Only
/// one process sweeps at a time (the job lease), and it renews the lease after every batch;
/// a process that loses it (it stalled longer than the lease) stops where it is.
public sealed class RetentionSweep(IServiceScopeFactory scopes, TimeProvider time, RetentionOptions options, ILogger<RetentionSweep> log)
{
    public static readonly TimeSpan LeaseFor = TimeSpan.FromMinutes(2);

    private readonly string _owner = $"{Environment.ProcessId}:{Guid.NewGuid():N}";

    public RetentionOptions Options => options;

    /// When the last sweep of this process finished, and what it removed (one reference,
    /// replaced whole, so a reader never sees half of it).
    public SweepReport? Last { get; private set; }

    /// Runs one sweep. Returns null when another process holds the lease.
    public async Task<RemovedCounts?> RunOnceAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var gate = scope.ServiceProvider.GetRequiredService<WriteGate>();
        if (!await TakeLeaseAsync(db, ct))
        {
            return null;
        }
        var removed = new RemovedCounts();
        var startedAt = time.GetUtcNow();
        try
        {
            var now = startedAt;
            var batch = options.BatchSize;
            if (options.FinishedDeliveries is { } finished)
            {
                await RepeatAsync(db, async () =>
                {
                    var r = await RetentionStore.DeleteFinishedDeliveriesAsync(db, gate, now - finished, now, batch, ct);
                    removed.Add(r);
                    return r.Deliveries + r.DeliveryAttempts > 0 || r.HistoryLinesExpired > 0;
                }, ct);
                // File runs are finished work of the same kind: the record of a day's upload and
                // the file kept for download go after the same period.
                await RepeatAsync(db, async () =>
                {
                    var n = await RetentionStore.DeleteFinishedFileRunsAsync(db, gate, now - finished, now, batch, ct);
                    removed.FileRuns += n;
                    return n > 0;
                }, ct);
                await RepeatAsync(db, async () =>
                {
                    var n = await RetentionStore.DeleteFinishedEmailsAsync(db, gate, now - finished, batch, ct);
                    removed.AlertEmails += n;
                    return n > 0;
                }, ct);
            }
            if (options.Orders is { } idle)
            {
                await RepeatAsync(db, async () =>
                {
                    var r = await RetentionStore.DeleteIdleOrdersAsync(db, gate, now - idle, now, batch, ct);
                    removed.Add(r);
                    return r.Orders > 0;
                }, ct);
            }
            if (options.InboundLog is { } inbound)
            {
                await RepeatAsync(db, async () =>
                {
                    var n = await RetentionStore.DeleteInboundLogAsync(db, gate, now - inbound, batch, ct);
                    removed.InboundLogEntries += n;
                    return n > 0;
                }, ct);
            }
        }
        finally
        {
            await ReleaseLeaseAsync(db);
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

    private async Task RepeatAsync(PostbackDb db, Func<Task<bool>> batch, CancellationToken ct)
    {
        while (await batch())
        {
            ct.ThrowIfCancellationRequested();
            if (!await RenewLeaseAsync(db, ct))
            {
                throw new LeaseLostException();
            }
            db.ChangeTracker.Clear();
        }
    }

    private async Task<bool> TakeLeaseAsync(PostbackDb db, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var until = now + LeaseFor;
        return await db.JobLeases
            .Where(l => l.Name == RetentionModel.SweepLease && (l.Owner == null || l.Until == null || l.Until < now || l.Owner == _owner))
            .ExecuteUpdateAsync(s => s.SetProperty(l => l.Owner, _owner).SetProperty(l => l.Until, until), ct) == 1;
    }

    private async Task<bool> RenewLeaseAsync(PostbackDb db, CancellationToken ct)
    {
        var until = time.GetUtcNow() + LeaseFor;
        return await db.JobLeases.Where(l => l.Name == RetentionModel.SweepLease && l.Owner == _owner)
            .ExecuteUpdateAsync(s => s.SetProperty(l => l.Until, until), ct) == 1;
    }

    private async Task ReleaseLeaseAsync(PostbackDb db)
    {
        try
        {
            await db.JobLeases.Where(l => l.Name == RetentionModel.SweepLease && l.Owner == _owner)
                .ExecuteUpdateAsync(s => s.SetProperty(l => l.Owner, (string?)null).SetProperty(l => l.Until, (DateTimeOffset?)null), CancellationToken.None);
        }
        catch (Exception e)
        {
            // It expires by itself.
            log.LogWarning(e, "Could not release the retention lease");
        }
    }

    private sealed class LeaseLostException() : Exception("Another process took over the retention lease mid-sweep.");
}

/// Runs the sweep every SweepInterval.
public sealed class RetentionWorker(RetentionSweep sweep, TimeProvider time, RetentionWarnings warnings, ILogger<RetentionWorker> log)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        foreach (var warning in warnings.Texts)
        {
            log.LogWarning("{Warning}", warning);
        }
        var o = sweep.Options;
        log.LogInformation("Retention: finished deliveries {Finished}, orders {Orders}, inbound log {Inbound}, a sweep every {Interval}",
            RetentionOptions.Describe(o.FinishedDeliveries), RetentionOptions.Describe(o.Orders), RetentionOptions.Describe(o.InboundLog),
            RetentionOptions.Describe(o.SweepInterval));
        // The first sweep is one interval after start, not during it: a restart (an upgrade,
        // a crash loop) adds no sweep to start-up's work.
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(o.SweepInterval, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            try
            {
                await sweep.RunOnceAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // What is left is found again by the next sweep.
                log.LogError(e, "Retention sweep failed");
            }
        }
    }
}

public sealed record SweepReport(DateTimeOffset StartedAt, DateTimeOffset At, RemovedCounts Removed);

/// What reading the options had to say (a deprecated key in use), logged once a logger exists.
public sealed record RetentionWarnings(IReadOnlyList<string> Texts);
