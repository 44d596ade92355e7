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

/// Which file runs there are to be, as plain functions: the days due for a profile, the row
/// of a new run, the alert e-mails of a failed one. Storing them, and the runs' claims,
/// renewals, releases and outcomes, is Storage/Stores/FileRunLeaseStore.cs.
public static class FileRunSchedule
{
    // Days a process that was down catches up on (the latest due day and the ones before it).
    public const int CatchUpDays = 7;

    /// The runs whose scheduled time has passed for a file profile, as of now: the latest due
    /// day and CatchUpDays before it, for each route, counting only days whose run fell due
    /// after the profile was created. Empty for a profile that cannot be scheduled.
    public static IReadOnlyList<(int RouteIndex, string Day, DateTimeOffset DueAt)> DueRuns(ExportProfile profile, DateTimeOffset now)
    {
        if (profile.File is not { } file || profile.Routes.Count == 0 || FileDays.FindTimeZone(file.Schedule.TimeZone) is not { } zone)
        {
            return [];
        }
        var time = FileDays.ParseTime(file.Schedule.Time);
        var latest = FileDays.LatestDueDay(now, time, zone);
        var due = new List<(int, string, DateTimeOffset)>();
        foreach (var day in Enumerable.Range(0, CatchUpDays).Select(i => latest.AddDays(-i)))
        {
            var dueAt = FileDays.RunDueAt(day, time, zone);
            if (dueAt <= profile.CreatedAt)
            {
                continue;
            }
            for (var i = 0; i < profile.Routes.Count; i++)
            {
                due.Add((i, FileDays.Format(day), dueAt));
            }
        }
        return due;
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

    /// The oldest day the scheduler may still create a run for, as of now, whatever the
    /// profile's time zone (UTC-12 to UTC+14) and schedule: its latest due day is at most three
    /// days before today in UTC, and it looks CatchUpDays back from there. A finished run of an
    /// earlier day can be deleted without the scheduler running that day again.
    public static string FirstDayStillScheduled(DateTimeOffset now) =>
        FileDays.Format(DateOnly.FromDateTime(now.UtcDateTime).AddDays(-(CatchUpDays + 3)));
}
