using System.Linq.Expressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Query;
using Postback.Infrastructure;

namespace Postback.Storage;

/// The lease writes every row queue shares (deliveries, confirmations, alert e-mails, file
/// runs): giving claimed rows back, and extending their lease. Each is conditional on the
/// owner, so a worker that lost its lease (another took the row over) changes nothing.
public sealed class LeaseRows<T>(IServiceScopeFactory scopes, WriteGate gate, Func<PostbackDb, DbSet<T>> table)
    where T : class, ILeasedRow
{
    /// Frees the owner's rows among `ids` in one statement: due as they were, for any worker.
    /// `also` sets more on the freed rows (a file run's claimed attempt taken back).
    public async Task ReleaseAsync(string owner, IReadOnlyCollection<long> ids, CancellationToken ct, Action<UpdateSettersBuilder<T>>? also = null)
    {
        if (ids.Count == 0)
        {
            return;
        }
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        using var turn = await gate.EnterAsync(ct);
        await table(db)
            .Where(r => r.LeaseOwner == owner && ids.Contains(r.Id))
            .ExecuteUpdateAsync(s =>
            {
                s.SetProperty(r => r.LeaseOwner, (string?)null).SetProperty(r => r.LeaseUntil, (DateTimeOffset?)null);
                also?.Invoke(s);
            }, ct);
    }

    /// Extends the lease to `lease.Until` on each row still held by `lease.Owner` and still
    /// matching `held` (one conditional statement a row); returns the ids renewed.
    public async Task<IReadOnlySet<long>> RenewAsync(Lease lease, IReadOnlyCollection<long> ids, Expression<Func<T, bool>> held, CancellationToken ct)
    {
        var (owner, until) = (lease.Owner, lease.Until);
        var renewed = new HashSet<long>();
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        foreach (var id in ids)
        {
            using var turn = await gate.EnterAsync(ct);
            if (await table(db).Where(r => r.Id == id && r.LeaseOwner == owner).Where(held)
                .ExecuteUpdateAsync(s => s.SetProperty(r => r.LeaseUntil, until), ct) == 1)
            {
                renewed.Add(id);
            }
        }
        return renewed;
    }
}
