using Microsoft.EntityFrameworkCore;
using Postback.Confirmations;
using Postback.ExportProfiles;
using Postback.FileExports;
using Postback.Infrastructure;
using Postback.Notifications;

namespace Postback.Storage.Stores;

/// File runs are few (one per profile, route and day), so a claim is one conditional UPDATE per
/// row: whoever changes it first owns it (PostgreSQL re-checks the condition on the locked row,
/// SQLite has one writer), the others see 0 rows changed. The same statements on both databases.
public sealed class FileRunLeaseStore(IServiceScopeFactory scopes, WriteGate gate) : IFileRunLeaseStore
{
    private readonly LeaseRows<FileRun> _leases = new(scopes, gate, db => db.FileRuns);

    public async Task<int> ScheduleDueAsync(DateTimeOffset now, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var profiles = await db.ExportProfiles.AsNoTracking()
            .Where(p => p.Type == ExportTypes.File && p.Enabled)
            .ToListAsync(ct);
        var created = 0;
        foreach (var profile in profiles)
        {
            var due = FileRunSchedule.DueRuns(profile, now);
            if (due.Count == 0)
            {
                continue;
            }
            var oldest = due.Min(d => d.Day)!;
            var profileId = profile.Id;
            var existing = (await db.FileRuns.AsNoTracking()
                .Where(r => r.ProfileId == profileId && string.Compare(r.Day, oldest) >= 0)
                .Select(r => new { r.RouteIndex, r.Day }).ToListAsync(ct))
                .Select(r => (r.RouteIndex, r.Day)).ToHashSet();
            foreach (var (routeIndex, day, dueAt) in due)
            {
                if (!existing.Contains((routeIndex, day))
                    && await TryInsertAsync(db, FileRunSchedule.NewRun(profile, routeIndex, day, "schedule", dueAt, now), ct))
                {
                    created++;
                }
            }
        }
        return created;
    }

    public async Task<List<FileRun>> RequestAsync(ExportProfile profile, DateOnly day, int? routeIndex, DateTimeOffset now, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var dayText = FileDays.Format(day);
        var indexes = routeIndex is { } only ? [only] : Enumerable.Range(0, profile.Routes.Count).ToList();
        var runs = new List<FileRun>();
        foreach (var index in indexes)
        {
            var profileId = profile.Id;
            var existing = await db.FileRuns.AsNoTracking().FirstOrDefaultAsync(r => r.ProfileId == profileId && r.RouteIndex == index && r.Day == dayText, ct);
            if (existing is null)
            {
                var run = FileRunSchedule.NewRun(profile, index, dayText, "manual", now, now);
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
            using (await gate.EnterAsync(ct))
            {
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
            }
            runs.Add(await db.FileRuns.AsNoTracking().FirstAsync(r => r.Id == existing.Id, ct));
        }
        return runs;
    }

    public async Task<int> ForgetFilesAsync(DateTimeOffset now, TimeSpan keep, CancellationToken ct)
    {
        var before = now - keep;
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        using var turn = await gate.EnterAsync(ct);
        return await db.FileRuns.Where(r => r.Content != null && r.CompletedAt < before)
            .ExecuteUpdateAsync(s => s.SetProperty(r => r.Content, (byte[]?)null), ct);
    }

    // The unique index on (profile, route, day) makes a second process's insert of the same
    // day fail, which is ignored.
    private async Task<bool> TryInsertAsync(PostbackDb db, FileRun run, CancellationToken ct)
    {
        db.FileRuns.Add(run);
        try
        {
            using var turn = await gate.EnterAsync(ct);
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

    /// Claims up to `limit` due runs, oldest first; each claim counts an attempt.
    public async Task<IReadOnlyList<FileRun>> ClaimAsync(Lease lease, int limit, CancellationToken ct)
    {
        var (owner, now, until) = (lease.Owner, lease.Now, lease.Until);
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var candidates = await db.FileRuns.AsNoTracking()
            .Where(r => r.Status == FileRunStatus.Pending && r.DueAt <= now && (r.LeaseUntil == null || r.LeaseUntil < now))
            .OrderBy(r => r.DueAt).ThenBy(r => r.Id)
            .Select(r => r.Id)
            .Take(limit)
            .ToListAsync(ct);
        var claimed = new List<FileRun>();
        foreach (var id in candidates)
        {
            int won;
            using (await gate.EnterAsync(ct))
            {
                won = await db.FileRuns
                    .Where(r => r.Id == id && r.Status == FileRunStatus.Pending && r.DueAt <= now && (r.LeaseUntil == null || r.LeaseUntil < now))
                    .ExecuteUpdateAsync(s => s
                        .SetProperty(r => r.LeaseOwner, owner)
                        .SetProperty(r => r.LeaseUntil, until)
                        // A run this process already holds (its lease ran out while the upload
                        // went on, and the engine leaves it to that upload) is no new attempt.
                        .SetProperty(r => r.Attempts, r => r.LeaseOwner == owner ? r.Attempts : r.Attempts + 1)
                        .SetProperty(r => r.LastAttemptAt, now), ct);
            }
            if (won == 1)
            {
                claimed.Add(await db.FileRuns.AsNoTracking().SingleAsync(r => r.Id == id, ct));
            }
        }
        return claimed;
    }

    /// Extends the lease on runs still pending and held by this owner (not taken over, not reset
    /// by a manual re-run).
    public Task<IReadOnlySet<long>> RenewAsync(Lease lease, IReadOnlyCollection<long> ids, CancellationToken ct) =>
        _leases.RenewAsync(lease, ids, r => r.Status == FileRunStatus.Pending, ct);

    /// Gives claimed runs back untried (a stopping process): due as they were, the attempt the
    /// claim counted taken back.
    public Task ReleaseAsync(string owner, IReadOnlyCollection<long> ids, CancellationToken ct) =>
        _leases.ReleaseAsync(owner, ids, ct, also: s => s.SetProperty(r => r.Attempts, r => r.Attempts - 1));

    /// Records each outcome while its lease is ours. A failure is due again at its retry time,
    /// or failed for good (a permanent error, or past the profile's giveUpAfterHours), which
    /// queues the alert e-mails in the same transaction. Returns the ids recorded.
    public async Task<IReadOnlySet<long>> CompleteAsync(string owner, IReadOnlyList<FileRunOutcome> outcomes, DateTimeOffset now, CancellationToken ct)
    {
        var recorded = new HashSet<long>();
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        foreach (var outcome in outcomes)
        {
            using var turn = await gate.EnterAsync(ct);
            if (await CompleteAsync(db, owner, outcome, now, ct))
            {
                recorded.Add(outcome.Id);
            }
            db.ChangeTracker.Clear();
        }
        return recorded;
    }

    private static async Task<bool> CompleteAsync(PostbackDb db, string owner, FileRunOutcome outcome, DateTimeOffset now, CancellationToken ct)
    {
        var (run, result) = (outcome.Run, outcome.Result);
        var mine = db.FileRuns.Where(r => r.Id == run.Id && r.LeaseOwner == owner);
        if (result.Error is null)
        {
            return await mine.ExecuteUpdateAsync(s => s
                .SetProperty(r => r.Status, FileRunStatus.Succeeded)
                .SetProperty(r => r.Rows, result.Rows)
                .SetProperty(r => r.Bytes, result.Content == null ? 0 : result.Content.LongLength)
                .SetProperty(r => r.FileName, result.FileName)
                .SetProperty(r => r.Content, result.Content)
                .SetProperty(r => r.LastError, (string?)null)
                .SetProperty(r => r.CompletedAt, now)
                .SetProperty(r => r.UpdatedAt, now)
                .SetProperty(r => r.LeaseOwner, (string?)null)
                .SetProperty(r => r.LeaseUntil, (DateTimeOffset?)null), ct) == 1;
        }

        var error = Text.Clip(result.Error, 1000);
        if (outcome.Status == FileRunStatus.Pending)
        {
            var next = outcome.RetryAt!.Value;
            return await mine.ExecuteUpdateAsync(s => s
                .SetProperty(r => r.DueAt, next)
                .SetProperty(r => r.Rows, result.Rows)
                .SetProperty(r => r.FileName, result.FileName)
                .SetProperty(r => r.LastError, error)
                .SetProperty(r => r.UpdatedAt, now)
                .SetProperty(r => r.LeaseOwner, (string?)null)
                .SetProperty(r => r.LeaseUntil, (DateTimeOffset?)null), ct) == 1;
        }

        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        var failed = await mine.ExecuteUpdateAsync(s => s
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
            return false;
        }
        var recipients = await db.ConfirmationSettings.AsNoTracking()
            .Where(c => c.OrganizationId == run.OrganizationId)
            .Select(c => c.NotificationEmails).FirstOrDefaultAsync(ct) ?? [];
        foreach (var email in FileRunSchedule.Alerts(run, recipients, outcome.ProfileName, error, now))
        {
            db.EmailOutbox.Add(email);
        }
        await db.SaveChangesAsync(ct);
        await transaction.CommitAsync(ct);
        return true;
    }
}
