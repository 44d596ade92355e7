using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.Infrastructure;
using Postback.Notifications;
using Postback.Storage;

namespace Postback.FileExports;

public sealed class FileRunSignal : WakeSignal;

/// Runs file exports on the lease-queue engine (Infrastructure/LeaseQueue.cs): before each
/// claim it schedules the days whose time has come; a claimed run is rendered into the day's
/// CSV, uploaded as name.part and renamed into place, with its lease renewed meanwhile; the
/// outcome is written back by the engine's writer. A failure is retried with the delivery
/// backoff (from FirstRetrySeconds up to the profile's retry cap) until it succeeds or the
/// profile's giveUpAfterHours passes. Runs survive restarts: they are rows, and a crashed
/// process's lease runs out.
public sealed class FileRunWorker : BackgroundService, ILeaseWork<FileRun, FileRunOutcome>
{
    public const int ClaimBatch = 4;

    private readonly IServiceScopeFactory _scopes;
    private readonly IOptions<PostbackOptions> _options;
    private readonly TimeProvider _time;
    private readonly EmailSignal _emailSignal;
    private readonly ILogger<FileRunWorker> _log;
    private readonly LeaseQueue<FileRun, FileRunOutcome> _queue;

    public FileRunWorker(
        IServiceScopeFactory scopes, IFileRunLeaseStore store, IOptions<PostbackOptions> options, TimeProvider time,
        FileRunSignal signal, EmailSignal emailSignal, ILogger<FileRunWorker> log)
    {
        (_scopes, _options, _time, _emailSignal, _log) = (scopes, options, time, emailSignal, log);
        _queue = new(new LeaseQueueSettings
        {
            Work = "File export pass",
            OwnerPrefix = "f:",
            MaxInFlight = ClaimBatch,
            ClaimBatch = ClaimBatch,
            Lease = Lease,
            Poll = TimeSpan.FromSeconds(Options.PollSeconds),
            // A stopping process gives its runs back at once (the file is renamed into place
            // only once whole, so an upload cut short leaves no file), due for whoever is next.
            Drain = TimeSpan.Zero,
        }, new SchedulingStore(this, store), this, signal, time, log);
    }

    private FileExportOptions Options => _options.Value.FileExports;

    private TimeSpan Lease => TimeSpan.FromSeconds(Options.LeaseSeconds);

    private DateTimeOffset _nextCleanup;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Options.Enabled ? _queue.RunAsync(stoppingToken) : Task.CompletedTask;

    /// One pass by hand (a test that moves a fake clock; the worker's loop is off): schedules due
    /// days, runs what is due and records it; returns the runs it ran.
    public Task<int> PassAsync(CancellationToken ct) => _queue.PassAsync(ct);

    /// Days whose run time has passed get their runs before each claim, and kept files past
    /// their days are forgotten once an hour.
    private sealed class SchedulingStore(FileRunWorker worker, IFileRunLeaseStore store) : ILeaseStore<FileRun, FileRunOutcome>
    {
        public async Task<IReadOnlyList<FileRun>> ClaimAsync(Lease lease, int limit, CancellationToken ct)
        {
            await store.ScheduleDueAsync(lease.Now, ct);
            if (lease.Now >= worker._nextCleanup)
            {
                await store.ForgetFilesAsync(lease.Now, TimeSpan.FromDays(worker.Options.KeepFilesDays), ct);
                worker._nextCleanup = lease.Now + TimeSpan.FromHours(1);
            }
            return await store.ClaimAsync(lease, limit, ct);
        }

        public Task<IReadOnlySet<long>> CompleteAsync(string owner, IReadOnlyList<FileRunOutcome> outcomes, DateTimeOffset now, CancellationToken ct) =>
            store.CompleteAsync(owner, outcomes, now, ct);

        public Task ReleaseAsync(string owner, IReadOnlyCollection<long> ids, CancellationToken ct) => store.ReleaseAsync(owner, ids, ct);

        public Task<IReadOnlySet<long>> RenewAsync(Lease lease, IReadOnlyCollection<long> ids, CancellationToken ct) => store.RenewAsync(lease, ids, ct);
    }

    public async Task DispatchAsync(IReadOnlyList<FileRun> claimed, LeaseDispatch<FileRunOutcome> dispatch, CancellationToken ct)
    {
        foreach (var run in claimed)
        {
            await dispatch.StartAsync(run.Id, abort => RunOneAsync(run, dispatch, abort));
        }
    }

    private async Task<FileRunOutcome?> RunOneAsync(FileRun run, LeaseDispatch<FileRunOutcome> dispatch, CancellationToken stopping)
    {
        await using var scope = _scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var profile = await db.ExportProfiles.AsNoTracking().FirstOrDefaultAsync(p => p.Id == run.ProfileId, stopping);
        if (profile is null)
        {
            // Deleted meanwhile, and its runs with it.
            return null;
        }

        // The lease is renewed while the file is rendered and uploaded; losing it (another
        // process took the run over) cancels the upload.
        using var lost = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        var renewal = RenewAsync(run.Id, dispatch, lost);
        RunResult result;
        try
        {
            result = await FileRunner.RunAsync(db, profile, run, Options, _options.Value.Outbound.AllowPrivateNetworks, _time, lost.Token);
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested && lost.IsCancellationRequested)
        {
            _log.LogWarning("File run {RunId} lost its lease; the process that took it over records it", run.Id);
            return null;
        }
        finally
        {
            await lost.CancelAsync();
            await renewal;
        }
        // (Stopping: the cancellation goes up to the engine, which gives the run back.)

        DateTimeOffset? retryAt = null;
        if (result.Error is not null && !result.Permanent)
        {
            var policy = new RetryPolicy(
                TimeSpan.FromSeconds(Options.FirstRetrySeconds),
                TimeSpan.FromMinutes(profile.RetryCapMinutes),
                profile.GiveUpAfterHours is { } hours ? TimeSpan.FromHours(hours) : null);
            retryAt = RetrySchedule.NextAttempt(policy, run.Attempts, _time.GetUtcNow(), run.FirstDueAt, null, Random.Shared.NextDouble());
        }
        return new FileRunOutcome(run, result, retryAt, profile.Name);
    }

    /// After each batch of outcomes is written: the lines, the metric and the alert e-mails'
    /// wake-up, for what was recorded (a lost lease records and counts nothing).
    public void Recorded(IReadOnlyList<FileRunOutcome> outcomes, IReadOnlySet<long> recorded)
    {
        foreach (var outcome in outcomes)
        {
            var (run, result) = (outcome.Run, outcome.Result);
            var status = recorded.Contains(outcome.Id) ? outcome.Status : null;
            if (MetricStatus(status) is { } counted)
            {
                Infrastructure.PostbackMetrics.FileRunFinished(counted);
            }
            if (status == FileRunStatus.Failed)
            {
                _emailSignal.Notify();
            }
            if (result.Error is not null)
            {
                _log.LogWarning("File run {RunId} ({Profile}, {Route}, {Day}) attempt {Attempt} failed: {Error}; {Next}",
                    run.Id, run.ProfileId, run.RouteName, run.Day, run.Attempts, result.Error,
                    status == FileRunStatus.Pending ? "retrying at " + outcome.RetryAt?.ToString("O", CultureInfo.InvariantCulture) : status ?? "lease lost");
            }
            else if (status is not null)
            {
                _log.LogInformation("File run {RunId} ({Profile}, {Route}, {Day}) uploaded {File}: {Rows} rows",
                    run.Id, run.ProfileId, run.RouteName, run.Day, result.FileName, result.Rows);
            }
        }
    }

    /// postback_file_runs_total's status: a run left pending after a failed attempt is "retrying".
    public static string? MetricStatus(string? recorded) => recorded switch
    {
        FileRunStatus.Succeeded => "succeeded",
        FileRunStatus.Failed => "failed",
        FileRunStatus.Pending => "retrying",
        _ => null,
    };

    private async Task RenewAsync(long runId, LeaseDispatch<FileRunOutcome> dispatch, CancellationTokenSource lost)
    {
        var every = Lease / 3;
        try
        {
            while (true)
            {
                await Task.Delay(every, _time, lost.Token);
                if ((await dispatch.RenewAsync([runId], lost.Token)).Count == 0)
                {
                    await lost.CancelAsync();
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e)
        {
            // A renewal that failed (database briefly away): the lease may run out, and then
            // the run is taken over and uploaded again, which overwrites the same file.
            _log.LogWarning(e, "Renewing the lease of file run {RunId} failed", runId);
        }
    }
}

/// One attempt of a run: render the day's rows into CSV and upload it.
public static class FileRunner
{
    public static async Task<RunResult> RunAsync(
        PostbackDb db, ExportProfiles.ExportProfile profile, FileRun run, FileExportOptions options, bool allowPrivateNetworks, TimeProvider time, CancellationToken ct)
    {
        if (profile.Type != ExportProfiles.ExportTypes.File || profile.File is not { } file)
        {
            return new RunResult(0, null, null, "the profile is no longer a file profile", Permanent: true);
        }
        if (run.RouteIndex >= profile.Routes.Count)
        {
            return new RunResult(0, null, null, $"the profile no longer has route {run.RouteIndex + 1} ({run.RouteName})", Permanent: true);
        }
        var day = DateOnly.ParseExact(run.Day, "yyyy-MM-dd", CultureInfo.InvariantCulture);
        var rows = await FileRows.ForDayAsync(db, profile, run.RouteIndex, day, ct);
        if (rows.Count == 0 && !file.EmptyFile)
        {
            return new RunResult(0, null, null, null);
        }
        var content = CsvFile.Render(profile.Mappings, rows, file.Header, file.Delimiter);
        var fileName = FileNameTemplate.Render(file.FileName, profile.Name, run.RouteName, day);
        try
        {
            await using var destination = FileDestination.Open(file, options, allowPrivateNetworks);
            await destination.ConnectAsync(ct);
            await using var stream = Throttled(new MemoryStream(content, writable: false), options.MaxBytesPerSecond, time);
            await destination.UploadAsync(fileName, stream, ct);
            return new RunResult(rows.Count, content, fileName, null);
        }
        catch (FileDestinationException e)
        {
            return new RunResult(rows.Count, null, fileName, e.Message);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or Renci.SshNet.Common.SshException or TimeoutException
            || e is OperationCanceledException && !ct.IsCancellationRequested)
        {
            return new RunResult(rows.Count, null, fileName, e.Message);
        }
    }

    private static Stream Throttled(Stream inner, int bytesPerSecond, TimeProvider time) =>
        bytesPerSecond > 0 ? new ThrottledStream(inner, bytesPerSecond, time) : inner;
}

/// Reads at most a given number of bytes a second (Postback:FileExports:MaxBytesPerSecond).
public sealed class ThrottledStream(Stream inner, int bytesPerSecond, TimeProvider time) : Stream
{
    private long _read;
    private readonly long _started = time.GetTimestamp();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        var slice = buffer[..Math.Min(buffer.Length, Math.Max(1, bytesPerSecond / 10))];
        var n = await inner.ReadAsync(slice, ct);
        _read += n;
        var due = TimeSpan.FromSeconds((double)_read / bytesPerSecond) - time.GetElapsedTime(_started);
        if (due > TimeSpan.Zero)
        {
            await Task.Delay(due, time, ct);
        }
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => inner.Length;
    public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }
        base.Dispose(disposing);
    }
}
