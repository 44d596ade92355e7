using Microsoft.EntityFrameworkCore;
using Postback.Infrastructure;
using Postback.Notifications;

namespace Postback.Storage.Stores;

/// Few rows (alerts), so one conditional UPDATE per message claimed: the same on both databases.
public sealed class EmailOutboxStore(IServiceScopeFactory scopes, WriteGate gate) : IEmailOutboxStore
{
    private const int MaxError = 990;

    private readonly LeaseRows<OutboxEmail> _leases = new(scopes, gate, db => db.EmailOutbox);

    public async Task<IReadOnlyList<OutboxEmail>> ClaimAsync(Lease lease, int limit, CancellationToken ct)
    {
        var now = lease.Now;
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var due = await db.EmailOutbox.AsNoTracking()
            .Where(m => m.Status == EmailStatus.Pending && m.DueAt <= now && (m.LeaseUntil == null || m.LeaseUntil < now))
            .OrderBy(m => m.DueAt)
            .Select(m => m.Id)
            .Take(limit)
            .ToListAsync(ct);
        var claimed = new List<OutboxEmail>();
        foreach (var id in due)
        {
            int won;
            using (await gate.EnterAsync(CancellationToken.None))
            {
                won = await db.EmailOutbox
                    .Where(m => m.Id == id && m.Status == EmailStatus.Pending && m.DueAt <= now && (m.LeaseUntil == null || m.LeaseUntil < now))
                    .ExecuteUpdateAsync(s => s.SetProperty(m => m.LeaseOwner, lease.Owner).SetProperty(m => m.LeaseUntil, lease.Until), CancellationToken.None);
            }
            if (won == 1)
            {
                claimed.Add(await db.EmailOutbox.AsNoTracking().FirstAsync(m => m.Id == id, CancellationToken.None));
            }
        }
        return claimed;
    }

    /// Extends the lease on claimed messages, one conditional statement each, only while it is
    /// still this owner's and has not run out.
    public Task<IReadOnlySet<long>> RenewAsync(Lease lease, IReadOnlyCollection<long> ids, CancellationToken ct)
    {
        var now = lease.Now;
        return _leases.RenewAsync(lease, ids, m => m.Status == EmailStatus.Pending && m.LeaseUntil > now, ct);
    }

    public async Task<IReadOnlySet<long>> CompleteAsync(string owner, IReadOnlyList<EmailOutcome> outcomes, DateTimeOffset now, CancellationToken ct)
    {
        var recorded = new HashSet<long>();
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        foreach (var o in outcomes)
        {
            // The server's reply can be any length: the column holds 1000 characters.
            var error = Text.ClipOrNull(o.Error, MaxError, "…");
            var sentAt = o.Status == EmailStatus.Sent ? (DateTimeOffset?)now : null;
            var query = db.EmailOutbox.Where(m => m.Id == o.Id && m.LeaseOwner == owner);
            using var turn = await gate.EnterAsync(ct);
            var written = o.NextDueAt is { } next
                ? await query.ExecuteUpdateAsync(s => s
                    .SetProperty(m => m.Attempts, m => m.Attempts + 1)
                    .SetProperty(m => m.DueAt, next)
                    .SetProperty(m => m.LastError, error)
                    .SetProperty(m => m.LeaseOwner, (string?)null)
                    .SetProperty(m => m.LeaseUntil, (DateTimeOffset?)null), ct)
                : await query.ExecuteUpdateAsync(s => s
                    .SetProperty(m => m.Status, o.Status)
                    .SetProperty(m => m.Attempts, m => m.Attempts + 1)
                    .SetProperty(m => m.SentAt, sentAt)
                    .SetProperty(m => m.LastError, error)
                    .SetProperty(m => m.LeaseOwner, (string?)null)
                    .SetProperty(m => m.LeaseUntil, (DateTimeOffset?)null), ct);
            if (written == 1)
            {
                recorded.Add(o.Id);
            }
        }
        return recorded;
    }

    public Task ReleaseAsync(string owner, IReadOnlyCollection<long> ids, CancellationToken ct) => _leases.ReleaseAsync(owner, ids, ct);
}
