using Microsoft.EntityFrameworkCore;
using Postback.Confirmations;
using Postback.Deliveries;
using Postback.Infrastructure;
using Postback.Notifications;

namespace Postback.Storage.Stores;

/// Confirmations are few (one per confirmed order), so the claim is one conditional UPDATE per
/// row: whoever changes the row first owns it, the others see 0 rows changed. The same on both
/// databases.
public sealed class ConfirmationStore(IServiceScopeFactory scopes, WriteGate gate) : IConfirmationStore
{
    private readonly LeaseRows<OrderConfirmation> _leases = new(scopes, gate, db => db.Confirmations);

    public async Task<IReadOnlyList<ClaimedConfirmation>> ClaimAsync(Lease lease, int limit, CancellationToken ct)
    {
        var now = lease.Now;
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var due = await db.Confirmations.AsNoTracking()
            .Where(c => c.Status == ConfirmationStatus.Pending && c.DueAt <= now && (c.LeaseUntil == null || c.LeaseUntil < now))
            .OrderBy(c => c.DueAt)
            .Select(c => new ClaimedConfirmation(c.Id, c.Round, c.Attempts))
            .Take(limit)
            .ToListAsync(ct);
        var claimed = new List<ClaimedConfirmation>();
        foreach (var c in due)
        {
            using var turn = await gate.EnterAsync(CancellationToken.None);
            var won = await db.Confirmations
                .Where(x => x.Id == c.Id && x.Round == c.Round && x.Status == ConfirmationStatus.Pending && x.DueAt <= now
                    && (x.LeaseUntil == null || x.LeaseUntil < now))
                .ExecuteUpdateAsync(s => s.SetProperty(x => x.LeaseOwner, lease.Owner).SetProperty(x => x.LeaseUntil, lease.Until), CancellationToken.None);
            if (won == 1)
            {
                claimed.Add(c);
            }
        }
        return claimed;
    }

    public async Task<IReadOnlySet<long>> CompleteAsync(string owner, IReadOnlyList<ConfirmationOutcome> outcomes, DateTimeOffset now, CancellationToken ct)
    {
        var recorded = new HashSet<long>();
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        foreach (var outcome in outcomes)
        {
            var after = outcome.After;
            var (id, round) = (outcome.Claimed.Id, outcome.Claimed.Round);
            using var turn = await gate.EnterAsync(ct);
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            var written = await db.Confirmations
                .Where(c => c.Id == id && c.Round == round && c.LeaseOwner == owner)
                .ExecuteUpdateAsync(s => s
                    .SetProperty(c => c.Status, after.Status)
                    .SetProperty(c => c.Attempts, after.Attempts)
                    .SetProperty(c => c.DueAt, after.DueAt)
                    .SetProperty(c => c.Message, Text.ClipOrNull(after.Message, 1000, "…"))
                    .SetProperty(c => c.Error, Text.ClipOrNull(after.Error, 1000, "…"))
                    .SetProperty(c => c.LastStatusCode, after.LastStatusCode)
                    .SetProperty(c => c.LastAttemptAt, after.LastAttemptAt)
                    .SetProperty(c => c.CompletedAt, after.CompletedAt)
                    .SetProperty(c => c.LeaseOwner, (string?)null)
                    .SetProperty(c => c.LeaseUntil, (DateTimeOffset?)null), ct);
            if (written != 1)
            {
                continue;
            }
            if (outcome.Attempt is { } attempt)
            {
                db.ConfirmationAttempts.Add(attempt);
            }
            if (outcome.History is { } history)
            {
                db.History.Add(history);
            }
            db.EmailOutbox.AddRange(outcome.Alerts);
            await db.SaveChangesAsync(ct);
            await transaction.CommitAsync(ct);
            db.ChangeTracker.Clear();
            recorded.Add(id);
        }
        return recorded;
    }

    public Task ReleaseAsync(string owner, IReadOnlyCollection<long> ids, CancellationToken ct) => _leases.ReleaseAsync(owner, ids, ct);
}
