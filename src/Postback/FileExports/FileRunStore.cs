using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Postback.Confirmations;
using Postback.ExportProfiles;
using Postback.Notifications;
using Postback.Storage;

namespace Postback.FileExports;

/// What happened to a run's file: uploaded (or, for an empty day without emptyFile, nothing to
/// upload), or an error.
public sealed record RunResult(int Rows, byte[]? Content, string? FileName, string? Error, bool Permanent = false);

/// The durable side of file runs, on both databases with the same statements:
/// - scheduling inserts one row per (profile, route, day); the unique index makes a second
///   process's insert of the same day fail, which is ignored;
/// - a claim is a conditional UPDATE of one row (pending, due, lease free or expired) that
///   sets the lease: PostgreSQL re-checks the condition on the locked row, SQLite has one
///   writer, so exactly one process gets each run;
/// - renewals and outcomes are written only WHERE "LeaseOwner" is still ours: a process that
///   stalled past its lease cannot overwrite what the process that took over recorded.
public static class FileRunStore
{
    // Days a process that was down catches up on (the latest due day and the ones before it).
    public const int CatchUpDays = 7;

    /// Creates the runs whose scheduled time has passed for every enabled file profile. Returns
    /// how many it created.
    public static async Task<int> ScheduleDueAsync(PostbackDb db, DateTimeOffset now, CancellationToken ct)
    {
        var profiles = await db.ExportProfiles.AsNoTracking()
            .Where(p => p.Type == ExportTypes.File && p.Enabled)
            .ToListAsync(ct);
        var created = 0;
        foreach (var profile in profiles)
        {
            if (profile.File is not { } file || profile.Routes.Count == 0 || FileDays.FindTimeZone(file.Schedule.TimeZone) is not { } zone)
            {
                continue;
            }
            var time = FileDays.ParseTime(file.Schedule.Time);
            var latest = FileDays.LatestDueDay(now, time, zone);
            var days = Enumerable.Range(0, CatchUpDays).Select(i => latest.AddDays(-i))
                // Only days whose run fell due after the profile was created.
                .Where(d => FileDays.RunDueAt(d, time, zone) > profile.CreatedAt)
                .Select(FileDays.Format)
                .ToList();
            if (days.Count == 0)
            {
                continue;
            }
            var oldest = days[^1];
            var profileId = profile.Id;
            var existing = (await db.FileRuns.AsNoTracking()
                .Where(r => r.ProfileId == profileId && string.Compare(r.Day, oldest) >= 0)
                .Select(r => new { r.RouteIndex, r.Day }).ToListAsync(ct))
                .Select(r => (r.RouteIndex, r.Day)).ToHashSet();
            foreach (var day in days)
            {
                var dueAt = FileDays.RunDueAt(DateOnly.ParseExact(day, "yyyy-MM-dd", CultureInfo.InvariantCulture), time, zone);
                for (var i = 0; i < profile.Routes.Count; i++)
                {
                    if (existing.Contains((i, day)))
                    {
                        continue;
                    }
                    if (await TryInsertAsync(db, NewRun(profile, i, day, "schedule", dueAt, now), ct))
                    {
                        created++;
                    }
                }
            }
        }
        return created;
    }

    public static FileRun NewRun(ExportProfile profile, int routeIndex, string day, string trigger, DateTimeOffset dueAt, DateTimeOffset now) => new()
    {
        OrganizationId = profile.OrganizationId,
        ProfileId = profile.Id,
        RouteIndex = routeIndex,
        RouteName = profile.Routes[routeIndex].NameAt(routeIndex),
        Day = day,
        Trigger = trigger,
        DueAt = dueAt,
        FirstDueAt = dueAt,
        CreatedAt = now,
        UpdatedAt = now,
    };

    private static async Task<bool> TryInsertAsync(PostbackDb db, FileRun run, CancellationToken ct)
    {
        db.FileRuns.Add(run);
        try
        {
            await db.SaveChangesAsync(ct);
            return true;
        }
        catch (DbUpdateException e) when (DatabaseErrors.IsUniqueViolation(e))
        {
            // Another process scheduled the same day first.
            return false;
        }
        finally
        {
            db.Entry(run).State = EntityState.Detached;
        }
    }

    /// Claims up to <paramref name="limit"/> due runs for this process.
    public static async Task<List<FileRun>> ClaimAsync(PostbackDb db, string owner, DateTimeOffset now, TimeSpan lease, int limit, CancellationToken ct)
    {
        var candidates = await db.FileRuns.AsNoTracking()
            .Where(r => r.Status == FileRunStatus.Pending && r.DueAt <= now && (r.LeaseUntil == null || r.LeaseUntil < now))
            .OrderBy(r => r.DueAt).ThenBy(r => r.Id)
            .Select(r => r.Id)
            .Take(limit)
            .ToListAsync(ct);
        var until = now + lease;
        var claimed = new List<FileRun>();
        foreach (var id in candidates)
        {
            var won = await db.FileRuns
                .Where(r => r.Id == id && r.Status == FileRunStatus.Pending && r.DueAt <= now && (r.LeaseUntil == null || r.LeaseUntil < now))
                .ExecuteUpdateAsync(s => s
                    .SetProperty(r => r.LeaseOwner, owner)
                    .SetProperty(r => r.LeaseUntil, until)
                    .SetProperty(r => r.Attempts, r => r.Attempts + 1)
                    .SetProperty(r => r.LastAttemptAt, now), ct);
            if (won == 1)
            {
                claimed.Add(await db.FileRuns.AsNoTracking().SingleAsync(r => r.Id == id, ct));
            }
        }
        return claimed;
    }

    /// Extends our lease; false when it is no longer ours (taken over, or the run was reset).
    public static async Task<bool> RenewAsync(PostbackDb db, long id, string owner, DateTimeOffset until, CancellationToken ct) =>
        await db.FileRuns
            .Where(r => r.Id == id && r.LeaseOwner == owner && r.Status == FileRunStatus.Pending)
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.LeaseUntil, until), ct) == 1;

    /// Gives a claimed run back untried (a stopping process): due as it was, attempt not counted.
    public static Task ReleaseAsync(PostbackDb db, long id, string owner, CancellationToken ct) =>
        db.FileRuns.Where(r => r.Id == id && r.LeaseOwner == owner)
            .ExecuteUpdateAsync(s => s
                .SetProperty(r => r.LeaseOwner, (string?)null)
                .SetProperty(r => r.LeaseUntil, (DateTimeOffset?)null)
                .SetProperty(r => r.Attempts, r => r.Attempts - 1), ct);

    /// Records a run's outcome while its lease is ours. A failure is due again after the backoff,
    /// or failed for good (a permanent error, or past the profile's giveUpAfterHours), which
    /// queues the alert e-mails in the same transaction. Returns the new status, or null when the
    /// lease was lost and nothing was written.
    public static async Task<string?> CompleteAsync(
        PostbackDb db, FileRun run, string owner, RunResult result, DateTimeOffset? retryAt, string profileName, DateTimeOffset now, CancellationToken ct)
    {
        if (result.Error is null)
        {
            var written = await db.FileRuns
                .Where(r => r.Id == run.Id && r.LeaseOwner == owner)
                .ExecuteUpdateAsync(s => s
                    .SetProperty(r => r.Status, FileRunStatus.Succeeded)
                    .SetProperty(r => r.Rows, result.Rows)
                    .SetProperty(r => r.Bytes, result.Content == null ? 0 : result.Content.LongLength)
                    .SetProperty(r => r.FileName, result.FileName)
                    .SetProperty(r => r.Content, result.Content)
                    .SetProperty(r => r.LastError, (string?)null)
                    .SetProperty(r => r.CompletedAt, now)
                    .SetProperty(r => r.UpdatedAt, now)
                    .SetProperty(r => r.LeaseOwner, (string?)null)
                    .SetProperty(r => r.LeaseUntil, (DateTimeOffset?)null), ct);
            return written == 1 ? FileRunStatus.Succeeded : null;
        }

        var error = result.Error.Length <= 1000 ? result.Error : result.Error[..1000];
        if (retryAt is { } next && !result.Permanent)
        {
            var written = await db.FileRuns
                .Where(r => r.Id == run.Id && r.LeaseOwner == owner)
                .ExecuteUpdateAsync(s => s
                    .SetProperty(r => r.DueAt, next)
                    .SetProperty(r => r.Rows, result.Rows)
                    .SetProperty(r => r.FileName, result.FileName)
                    .SetProperty(r => r.LastError, error)
                    .SetProperty(r => r.UpdatedAt, now)
                    .SetProperty(r => r.LeaseOwner, (string?)null)
                    .SetProperty(r => r.LeaseUntil, (DateTimeOffset?)null), ct);
            return written == 1 ? FileRunStatus.Pending : null;
        }

        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var failed = await db.FileRuns
            .Where(r => r.Id == run.Id && r.LeaseOwner == owner)
            .ExecuteUpdateAsync(s => s
                .SetProperty(r => r.Status, FileRunStatus.Failed)
                .SetProperty(r => r.Rows, result.Rows)
                .SetProperty(r => r.FileName, result.FileName)
                .SetProperty(r => r.LastError, error)
                .SetProperty(r => r.CompletedAt, now)
                .SetProperty(r => r.UpdatedAt, now)
                .SetProperty(r => r.LeaseOwner, (string?)null)
                .SetProperty(r => r.LeaseUntil, (DateTimeOffset?)null), ct);
        if (failed != 1)
        {
            return null;
        }
        var recipients = await db.ConfirmationSettings.AsNoTracking()
            .Where(c => c.OrganizationId == run.OrganizationId)
            .Select(c => c.NotificationEmails).FirstOrDefaultAsync(ct) ?? [];
        foreach (var email in Alerts(run, recipients, profileName, error, now))
        {
            db.EmailOutbox.Add(email);
        }
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        return FileRunStatus.Failed;
    }

    /// One e-mail per notification address; the key names the run, its round and the address,
    /// so the same failure never queues a second e-mail.
    public static IEnumerable<OutboxEmail> Alerts(FileRun run, IEnumerable<string> recipients, string profileName, string error, DateTimeOffset now)
    {
        var i = CultureInfo.InvariantCulture;
        var subject = string.Create(i, $"File export failed: {profileName}, {run.RouteName}, {run.Day}");
        var body = new StringBuilder()
            .Append(i, $"The file export profile \"{profileName}\" could not upload the file of route {run.RouteName} for {run.Day}.").Append('\n')
            .Append('\n')
            .Append("Error: ").Append(error).Append('\n')
            .Append(i, $"Attempts: {run.Attempts}").Append('\n')
            .Append('\n')
            .Append("Once the destination is fixed, run the day again:").Append('\n')
            .Append(i, $"  POST /api/v1/export-profiles/{run.ProfileId}/runs {{\"date\": \"{run.Day}\"}}").Append('\n')
            .Append(i, $"Every run of the profile: GET /api/v1/export-profiles/{run.ProfileId}/runs").Append('\n')
            .ToString();
        return recipients.Select(r => r.Trim()).Where(r => r.Length > 0).Distinct(StringComparer.OrdinalIgnoreCase).Select(r => new OutboxEmail
        {
            OrganizationId = run.OrganizationId,
            DedupKey = DedupKey(run.Id, run.Round, r),
            Recipient = r,
            Subject = subject.Length <= 300 ? subject : subject[..300],
            Body = body,
            DueAt = now,
            CreatedAt = now,
        });
    }

    public static string DedupKey(long runId, int round, string recipient)
    {
        var address = recipient.ToLowerInvariant();
        var key = string.Create(CultureInfo.InvariantCulture, $"filerun:{runId}:{round}:{address}");
        return key.Length <= ConfirmationAlert.MaxDedupKeyLength
            ? key
            : string.Create(CultureInfo.InvariantCulture, $"filerun:{runId}:{round}:sha256:{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(address)))}");
    }

    /// A manual run of a day for each route (or one): a new run, or the day's run made due now
    /// again (a new round; the same row and the same file). A run being uploaded right now is
    /// left to finish and returned as it is.
    public static async Task<List<FileRun>> RequestAsync(PostbackDb db, ExportProfile profile, DateOnly day, int? routeIndex, DateTimeOffset now, CancellationToken ct)
    {
        var dayText = FileDays.Format(day);
        var indexes = routeIndex is { } only ? [only] : Enumerable.Range(0, profile.Routes.Count).ToList();
        var runs = new List<FileRun>();
        foreach (var index in indexes)
        {
            var profileId = profile.Id;
            var existing = await db.FileRuns.AsNoTracking().FirstOrDefaultAsync(r => r.ProfileId == profileId && r.RouteIndex == index && r.Day == dayText, ct);
            if (existing is null)
            {
                var run = NewRun(profile, index, dayText, "manual", now, now);
                if (!await TryInsertAsync(db, run, ct))
                {
                    existing = await db.FileRuns.AsNoTracking().FirstAsync(r => r.ProfileId == profileId && r.RouteIndex == index && r.Day == dayText, ct);
                }
                else
                {
                    runs.Add(run);
                    continue;
                }
            }
            var round = existing.Round;
            var routeName = profile.Routes[index].NameAt(index);
            await db.FileRuns
                .Where(r => r.Id == existing.Id && r.Round == round && (r.LeaseUntil == null || r.LeaseUntil < now || r.Status != FileRunStatus.Pending))
                .ExecuteUpdateAsync(s => s
                    .SetProperty(r => r.Status, FileRunStatus.Pending)
                    .SetProperty(r => r.Trigger, "manual")
                    .SetProperty(r => r.Round, round + 1)
                    .SetProperty(r => r.RouteName, routeName)
                    .SetProperty(r => r.Attempts, 0)
                    .SetProperty(r => r.DueAt, now)
                    .SetProperty(r => r.FirstDueAt, now)
                    .SetProperty(r => r.LastError, (string?)null)
                    .SetProperty(r => r.CompletedAt, (DateTimeOffset?)null)
                    .SetProperty(r => r.UpdatedAt, now)
                    .SetProperty(r => r.LeaseOwner, (string?)null)
                    .SetProperty(r => r.LeaseUntil, (DateTimeOffset?)null), ct);
            runs.Add(await db.FileRuns.AsNoTracking().FirstAsync(r => r.Id == existing.Id, ct));
        }
        return runs;
    }

    /// The oldest day the scheduler may still create a run for, as of now, whatever the
    /// profile's time zone (UTC-12 to UTC+14) and schedule: its latest due day is at most three
    /// days before today in UTC, and it looks CatchUpDays back from there. A finished run of an
    /// earlier day can be deleted without the scheduler running that day again.
    public static string FirstDayStillScheduled(DateTimeOffset now) =>
        FileDays.Format(DateOnly.FromDateTime(now.UtcDateTime).AddDays(-(CatchUpDays + 3)));

    /// Clears the kept files of runs finished more than <paramref name="keep"/> ago.
    public static Task<int> ForgetFilesAsync(PostbackDb db, DateTimeOffset now, TimeSpan keep, CancellationToken ct)
    {
        var before = now - keep;
        return db.FileRuns.Where(r => r.Content != null && r.CompletedAt < before)
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.Content, (byte[]?)null), ct);
    }
}
