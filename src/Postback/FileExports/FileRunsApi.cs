using System.Globalization;
using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Postback.ExportProfiles;
using Postback.Infrastructure;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.FileExports;

public sealed record FileRunView(
    long Id, long ProfileId, string Route, string Day, string Status, string Trigger, int Round, int Attempts, int? Rows, long? Bytes,
    string? FileName, bool HasFile, string? LastError, DateTimeOffset DueAt, DateTimeOffset? LastAttemptAt, DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt, DateTimeOffset? CompletedAt)
{
    public static FileRunView From(FileRun r) => new(
        r.Id, r.ProfileId, r.RouteName, r.Day, r.Status, r.Trigger, r.Round, r.Attempts, r.Rows, r.Bytes, r.FileName, r.Content is not null,
        r.LastError, r.DueAt, r.LastAttemptAt, r.CreatedAt, r.UpdatedAt, r.CompletedAt);
}

public sealed record FileRunPage(IReadOnlyList<FileRunView> Items, long? NextBefore);

/// A run of a day now: the date (yyyy-MM-dd, in the profile's time zone) and optionally one
/// route by name (all routes when left out).
public sealed record RunRequest(string? Date, string? Route = null);

internal static class FileRunsApi
{
    public const int MaxPage = 200;

    public static RouteGroupBuilder MapFileRuns(this RouteGroupBuilder api)
    {
        var group = api.MapGroup("/export-profiles/{id:long}/runs").WithTags("File runs");
        group.MapGet("/", List).WithSummary("A file profile's runs (one per route per day), newest first; page with ?before=.");
        group.MapPost("/", RunNow).WithSummary("Render and upload a day's file(s) now: {\"date\": \"2026-11-30\", \"route\": \"route1\"?}. Re-running a day overwrites its file.");
        group.MapGet("/{runId:long}", Get).WithSummary("One file run: its day, route, status, rows, bytes, file name, attempts and last error.");
        group.MapGet("/{runId:long}/file", Download).Produces<string>(StatusCodes.Status200OK, "text/csv").WithSummary("The CSV exactly as it was uploaded (kept Postback:FileExports:KeepFilesDays days).");
        group.MapGet("/preview", Preview).WithSummary("The CSV a day's run would upload now (?date=, ?route=), without uploading it.");
        return api;
    }

    private static async Task<Results<Ok<FileRunPage>, ValidationProblem, ProblemHttpResult>> List(
        long id, long? before, int? limit, ClaimsPrincipal user, PostbackDb db, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        if (await FindFileProfileAsync(db, organizationId, id, ct) is not { } profile)
        {
            return NotFound(id);
        }
        var take = limit ?? 50;
        if (take is < 1 or > MaxPage)
        {
            return Problems.Validation("limit", $"must be from 1 to {MaxPage}");
        }
        var query = db.FileRuns.AsNoTracking().Where(r => r.OrganizationId == organizationId && r.ProfileId == profile.Id);
        if (before is { } b)
        {
            query = query.Where(r => r.Id < b);
        }
        var runs = await query.OrderByDescending(r => r.Id).Take(take + 1).Select(WithoutContent).ToListAsync(ct);
        var page = runs.Take(take).ToList();
        return TypedResults.Ok(new FileRunPage(page, runs.Count > take ? page[^1].Id : null));
    }

    // Lists never carry the files themselves.
    private static readonly System.Linq.Expressions.Expression<Func<FileRun, FileRunView>> WithoutContent = r => new FileRunView(
        r.Id, r.ProfileId, r.RouteName, r.Day, r.Status, r.Trigger, r.Round, r.Attempts, r.Rows, r.Bytes, r.FileName, r.Content != null,
        r.LastError, r.DueAt, r.LastAttemptAt, r.CreatedAt, r.UpdatedAt, r.CompletedAt);

    private static async Task<Results<Ok<FileRunView>, ProblemHttpResult>> Get(long id, long runId, ClaimsPrincipal user, PostbackDb db, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        var run = await db.FileRuns.AsNoTracking()
            .Where(r => r.OrganizationId == organizationId && r.ProfileId == id && r.Id == runId).Select(WithoutContent).FirstOrDefaultAsync(ct);
        return run is null ? Problems.NotFound($"Export profile {id} has no run {runId}.") : TypedResults.Ok(run);
    }

    private static async Task<Results<FileContentHttpResult, ProblemHttpResult>> Download(long id, long runId, ClaimsPrincipal user, PostbackDb db, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        var run = await db.FileRuns.AsNoTracking()
            .Where(r => r.OrganizationId == organizationId && r.ProfileId == id && r.Id == runId)
            .Select(r => new { r.FileName, r.Content, r.Status }).FirstOrDefaultAsync(ct);
        if (run is null)
        {
            return Problems.NotFound($"Export profile {id} has no run {runId}.");
        }
        if (run.Content is null)
        {
            return Problems.NotFound(run.Status == FileRunStatus.Succeeded
                ? $"Run {runId} uploaded no file (an empty day, with emptyFile false), or its file is past Postback:FileExports:KeepFilesDays."
                : $"Run {runId} has not uploaded its file (status {run.Status}).");
        }
        return TypedResults.File(run.Content, "text/csv; charset=utf-8", run.FileName);
    }

    private static async Task<Results<Accepted<List<FileRunView>>, ValidationProblem, ProblemHttpResult>> RunNow(
        long id, RunRequest input, ClaimsPrincipal user, PostbackDb db, IFileRunLeaseStore runs, TimeProvider time, FileRunSignal signal, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        if (await FindFileProfileAsync(db, organizationId, id, ct) is not { } profile)
        {
            return NotFound(id);
        }
        var now = time.GetUtcNow();
        var (day, routeIndex, errors) = CheckDay(profile, input.Date, input.Route, now, requireDue: true);
        if (errors is not null)
        {
            return Problems.Validation(errors);
        }
        var requested = await runs.RequestAsync(profile, day, routeIndex, now, ct);
        signal.Notify();
        return TypedResults.Accepted($"/api/v1/export-profiles/{id}/runs", requested.Select(FileRunView.From).ToList());
    }

    private static async Task<Results<ContentHttpResult, ValidationProblem, ProblemHttpResult>> Preview(
        long id, string? date, string? route, ClaimsPrincipal user, PostbackDb db, TimeProvider time, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        if (await FindFileProfileAsync(db, organizationId, id, ct) is not { } profile)
        {
            return NotFound(id);
        }
        var (day, routeIndex, errors) = CheckDay(profile, date, route, time.GetUtcNow(), requireDue: false);
        if (errors is not null)
        {
            return Problems.Validation(errors);
        }
        var csv = await RenderDayAsync(db, profile, day, routeIndex ?? 0, ct);
        return TypedResults.Content(CsvFile.Utf8.GetString(csv), "text/csv; charset=utf-8");
    }

    public static async Task<byte[]> RenderDayAsync(PostbackDb db, ExportProfile profile, DateOnly day, int routeIndex, CancellationToken ct)
    {
        var rows = profile.Routes.Count == 0 ? [] : await FileRows.ForDayAsync(db, profile, routeIndex, day, ct);
        return CsvFile.Render(profile.Mappings, rows, profile.File!.Header, profile.File.Delimiter);
    }

    /// The day asked for (yyyy-MM-dd) and the route by name; a run needs a day whose scheduled
    /// time has passed (before it, the day's own run has not happened yet).
    public static (DateOnly Day, int? RouteIndex, ValidationErrors? Errors) CheckDay(
        ExportProfile profile, string? date, string? route, DateTimeOffset now, bool requireDue)
    {
        var errors = new ValidationErrors();
        var zone = FileDays.FindTimeZone(profile.File!.Schedule.TimeZone) ?? TimeZoneInfo.Utc;
        var time = FileDays.ParseTime(profile.File.Schedule.Time);
        DateOnly day = default;
        if (date is null)
        {
            if (requireDue)
            {
                errors.Add("date", "is required: the day to run, yyyy-MM-dd, in the profile's time zone");
            }
            else
            {
                day = FileDays.LatestDueDay(now, time, zone);
            }
        }
        else if (!DateOnly.TryParseExact(date.Trim(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out day))
        {
            errors.Add("date", "must be a date yyyy-MM-dd, such as 2026-11-30");
        }
        else if (requireDue && FileDays.RunDueAt(day, time, zone) > now)
        {
            errors.Add("date", $"the file for {FileDays.Format(day)} is due at {profile.File.Schedule.Time} on {FileDays.Format(day.AddDays(1))} ({zone.Id}); a day can be run once that time has passed");
        }
        int? routeIndex = null;
        if (route is not null)
        {
            var index = profile.Routes.Select((r, i) => (r, i)).FirstOrDefault(x => x.r.NameAt(x.i).Equals(route.Trim(), StringComparison.OrdinalIgnoreCase), (null!, -1)).Item2;
            if (index < 0)
            {
                errors.Add("route", $"the profile has no route '{route}'; its routes are {string.Join(", ", profile.Routes.Select((r, i) => r.NameAt(i)))}");
            }
            else
            {
                routeIndex = index;
            }
        }
        else if (requireDue && profile.Routes.Count == 0)
        {
            errors.Add("route", "the profile has no routes, so it has no files to run");
        }
        return (day, routeIndex, errors.Any ? errors : null);
    }

    /// POST .../test on a file profile: connect, list the directory, write then delete a probe
    /// file. Each step says what happened.
    public static async Task<ConnectionTestView> TestConnectionAsync(FileSettings settings, PostbackOptions options, TimeProvider time, CancellationToken ct)
    {
        var steps = new List<ConnectionStep>();
        var probe = $".postback-probe-{Guid.NewGuid():N}.csv";
        var step = "connect";
        try
        {
            await using var destination = FileDestination.Open(settings, options.FileExports, options.Outbound.AllowPrivateNetworks);
            await destination.ConnectAsync(ct);
            steps.Add(new("connect", true, settings.Destination == FileDestinations.Folder
                ? $"{settings.Directory} is writable under the folder root"
                : $"logged in to {settings.Host}:{settings.Port} as {settings.Username}; {settings.Directory} exists"));
            step = "list";
            var names = await destination.ListAsync(ct);
            steps.Add(new("list", true, $"{names.Count} file(s) in {settings.Directory}"));
            step = "write";
            await destination.UploadAsync(probe, new MemoryStream(CsvFile.Utf8.GetBytes("postback connection test\r\n")), ct);
            steps.Add(new("write", true, $"wrote {probe} (as {probe}{FileDestination.PartSuffix}, then renamed)"));
            step = "delete";
            await destination.DeleteAsync(probe, ct);
            steps.Add(new("delete", true, $"deleted {probe}"));
            return new ConnectionTestView(true, steps, null);
        }
        catch (Exception e) when (e is FileDestinationException or IOException or System.Net.Sockets.SocketException or Renci.SshNet.Common.SshException
            or UnauthorizedAccessException || e is OperationCanceledException && !ct.IsCancellationRequested)
        {
            steps.Add(new(step, false, e.Message));
            return new ConnectionTestView(false, steps, $"{step}: {e.Message}");
        }
    }

    private static async Task<ExportProfile?> FindFileProfileAsync(PostbackDb db, long organizationId, long id, CancellationToken ct)
    {
        var profile = await ExportProfileOperations.FindAsync(db, organizationId, id, ct);
        return profile is { Type: ExportTypes.File, File: not null } ? profile : null;
    }

    private static ProblemHttpResult NotFound(long id) => Problems.NotFound($"There is no file export profile {id}.");
}
