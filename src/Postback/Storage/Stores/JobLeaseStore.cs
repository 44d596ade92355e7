using Microsoft.EntityFrameworkCore;
using Postback.Infrastructure;
using Postback.Retention;

namespace Postback.Storage.Stores;

/// Hands out the job stores of named jobs, with the database and the write gate they need.
public sealed class JobLeaseStores(IServiceScopeFactory scopes, WriteGate gate) : IJobLeaseStores
{
    public IJobLeaseStore For(string name, TimeSpan interval) => new JobLeaseStore(scopes, gate, name, interval);
}

/// A job that one process at a time runs, every `interval`, across all hub processes sharing
/// the database (the retention sweep), as a lease queue of one row in job_leases. The row's
/// Until is the lease's end while an Owner holds it, and when the job is next due while no one
/// does: so one condition, "Until is unset or past", finds it both due and free (or held by a
/// process that died). Finishing a run sets the next due time; giving it back makes it due at
/// once for whichever process comes next. Every write is conditional on the owner, so a run
/// that lost its lease (it stalled past it, another process took over) changes nothing.
public sealed class JobLeaseStore(IServiceScopeFactory scopes, WriteGate gate, string name, TimeSpan interval) : IJobLeaseStore
{
    public string Name => name;

    /// Takes the job when it is due and free.
    public async Task<IReadOnlyList<JobRun>> ClaimAsync(Lease lease, int limit, CancellationToken ct) =>
        limit > 0 && await TakeAsync(lease, dueOnly: true, ct) ? [new JobRun(name)] : [];

    /// Takes the job now if no one holds it, due or not (a run asked for explicitly).
    public Task<bool> TakeNowAsync(Lease lease, CancellationToken ct) => TakeAsync(lease, dueOnly: false, ct);

    private async Task<bool> TakeAsync(Lease lease, bool dueOnly, CancellationToken ct)
    {
        var (owner, now, until) = (lease.Owner, lease.Now, lease.Until);
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var row = db.JobLeases.Where(l => l.Name == name);
        row = dueOnly
            ? row.Where(l => l.Until == null || l.Until <= now)
            : row.Where(l => l.Owner == null || l.Until == null || l.Until <= now);
        using var turn = await gate.EnterAsync(ct);
        return await row.ExecuteUpdateAsync(s => s.SetProperty(l => l.Owner, owner).SetProperty(l => l.Until, until), ct) == 1;
    }

    /// Extends the lease while it is still this owner's and has not run out.
    public async Task<IReadOnlySet<long>> RenewAsync(Lease lease, IReadOnlyCollection<long> ids, CancellationToken ct)
    {
        var (owner, now, until) = (lease.Owner, lease.Now, lease.Until);
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        using var turn = await gate.EnterAsync(ct);
        var renewed = await db.JobLeases.Where(l => l.Name == name && l.Owner == owner && l.Until > now)
            .ExecuteUpdateAsync(s => s.SetProperty(l => l.Until, until), ct);
        return renewed == 1 ? new HashSet<long> { 1 } : new HashSet<long>();
    }

    /// A run finished (well or not): the job is free, and due `interval` from now.
    public async Task<IReadOnlySet<long>> CompleteAsync(string owner, IReadOnlyList<JobRun> outcomes, DateTimeOffset now, CancellationToken ct)
    {
        if (outcomes.Count == 0)
        {
            return new HashSet<long>();
        }
        var next = now + interval;
        return await FreeAsync(owner, next, ct) ? new HashSet<long> { 1 } : new HashSet<long>();
    }

    /// Gives the job back unfinished: due at once, for any process.
    public async Task ReleaseAsync(string owner, IReadOnlyCollection<long> ids, CancellationToken ct)
    {
        if (ids.Count > 0)
        {
            await FreeAsync(owner, null, ct);
        }
    }

    private async Task<bool> FreeAsync(string owner, DateTimeOffset? due, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        using var turn = await gate.EnterAsync(ct);
        return await db.JobLeases.Where(l => l.Name == name && l.Owner == owner)
            .ExecuteUpdateAsync(s => s.SetProperty(l => l.Owner, (string?)null).SetProperty(l => l.Until, due), ct) == 1;
    }
}
