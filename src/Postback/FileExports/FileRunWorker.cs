using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Postback.Deliveries;
using Postback.Infrastructure;
using Postback.Notifications;
using Postback.Storage;

namespace Postback.FileExports;

public sealed class FileRunSignal : WakeSignal;

/// Schedules the days whose time has come, then claims due runs and runs them: render the
/// day's CSV, upload it as name.part and rename it, record the outcome. A failure is retried
/// with the delivery backoff (from FirstRetrySeconds up to the profile's retry cap) until it
/// succeeds or the profile's giveUpAfterHours passes. Runs survive restarts: they are rows, and
/// a crashed process's lease runs out.
public sealed class FileRunWorker(
    IServiceScopeFactory scopes,
    IOptions<PostbackOptions> options,
    TimeProvider time,
    FileRunSignal signal,
    EmailSignal emailSignal,
    ILogger<FileRunWorker> log) : BackgroundService
{
    public const int ClaimBatch = 4;
    private readonly string _owner = $"{Environment.MachineName[..Math.Min(Environment.MachineName.Length, 20)]}:{Environment.ProcessId}:{Guid.NewGuid():N}";
    private FileExportOptions Options => options.Value.FileExports;
    private DateTimeOffset _nextCleanup;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Options.Enabled
            ? signal.RunAsync(TimeSpan.FromSeconds(Options.PollSeconds), PassAsync, log, "File export pass", stoppingToken)
            : Task.CompletedTask;

    /// Schedules due days, then runs what is due; returns the runs it ran.
    public async Task<int> PassAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var now = time.GetUtcNow();
        await FileRunStore.ScheduleDueAsync(db, now, ct);
        if (now >= _nextCleanup)
        {
            await FileRunStore.ForgetFilesAsync(db, now, TimeSpan.FromDays(Options.KeepFilesDays), ct);
            _nextCleanup = now + TimeSpan.FromHours(1);
        }
        var claimed = await FileRunStore.ClaimAsync(db, _owner, now, Lease, ClaimBatch, ct);
        await Task.WhenAll(claimed.Select(run => RunOneAsync(run, ct)));
        return claimed.Count;
    }

    private TimeSpan Lease => TimeSpan.FromSeconds(Options.LeaseSeconds);

    private async Task RunOneAsync(FileRun run, CancellationToken stopping)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var profile = await db.ExportProfiles.AsNoTracking().FirstOrDefaultAsync(p => p.Id == run.ProfileId, stopping);
        if (profile is null)
        {
            return;
        }

        // The lease is renewed while the file is rendered and uploaded; losing it (another
        // process took the run over) cancels the upload.
        using var lost = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        var renewal = RenewAsync(run.Id, lost);
        RunResult result;
        try
        {
            result = await FileRunner.RunAsync(db, profile, run, Options, options.Value.Outbound.AllowPrivateNetworks, time, lost.Token);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            await lost.CancelAsync();
            await renewal;
            await FileRunStore.ReleaseAsync(db, run.Id, _owner, CancellationToken.None);
            return;
        }
        catch (OperationCanceledException) when (lost.IsCancellationRequested)
        {
            log.LogWarning("File run {RunId} lost its lease; the process that took it over records it", run.Id);
            return;
        }
        finally
        {
            await lost.CancelAsync();
            await renewal;
        }

        var now = time.GetUtcNow();
        DateTimeOffset? retryAt = null;
        if (result.Error is not null && !result.Permanent)
        {
            var policy = new RetryPolicy(
                TimeSpan.FromSeconds(Options.FirstRetrySeconds),
                TimeSpan.FromMinutes(profile.RetryCapMinutes),
                profile.GiveUpAfterHours is { } hours ? TimeSpan.FromHours(hours) : null);
            retryAt = RetrySchedule.NextAttempt(policy, run.Attempts, now, run.FirstDueAt, null, Random.Shared.NextDouble());
        }
        var status = await FileRunStore.CompleteAsync(db, run, _owner, result, retryAt, profile.Name, now, CancellationToken.None);
        // Counted once the outcome is committed, and only by the process that recorded it (a
        // lost lease, null, records and counts nothing).
        if (MetricStatus(status) is { } counted)
        {
            Observability.PostbackMetrics.FileRunFinished(counted);
        }
        if (status == FileRunStatus.Failed)
        {
            emailSignal.Notify();
        }
        if (result.Error is not null)
        {
            log.LogWarning("File run {RunId} ({Profile}, {Route}, {Day}) attempt {Attempt} failed: {Error}; {Next}",
                run.Id, profile.Id, run.RouteName, run.Day, run.Attempts, result.Error,
                status == FileRunStatus.Pending ? "retrying at " + retryAt?.ToString("O", CultureInfo.InvariantCulture) : status ?? "lease lost");
        }
        else
        {
            log.LogInformation("File run {RunId} ({Profile}, {Route}, {Day}) uploaded {File}: {Rows} rows",
                run.Id, profile.Id, run.RouteName, run.Day, result.FileName, result.Rows);
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

    private async Task RenewAsync(long runId, CancellationTokenSource lost)
    {
        var every = Lease / 3;
        try
        {
            while (true)
            {
                await Task.Delay(every, time, lost.Token);
                await using var scope = scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
                if (!await FileRunStore.RenewAsync(db, runId, _owner, time.GetUtcNow() + Lease, lost.Token))
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
            log.LogWarning(e, "Renewing the lease of file run {RunId} failed", runId);
        }
    }
}

/// One attempt of a run: render the day's rows into CSV and upload it.
public static class FileRunner
{
    public static async Task<RunResult> RunAsync(
        PostbackDb db, Storage.ExportProfile profile, FileRun run, FileExportOptions options, bool allowPrivateNetworks, TimeProvider time, CancellationToken ct)
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
