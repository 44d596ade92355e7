using System.Collections.Concurrent;
using System.Threading.Channels;

namespace Postback.Infrastructure;

/// Anything a lease queue hands out or takes back: a row with an id.
public interface ILeased
{
    long Id { get; }
}

/// A stored row a lease queue hands out: who holds it (LeaseOwner) and until when.
public interface ILeasedRow : ILeased
{
    string? LeaseOwner { get; set; }
    DateTimeOffset? LeaseUntil { get; set; }
}

/// A lease the engine takes on due items: who holds them, from when, until when.
public readonly record struct Lease(string Owner, DateTimeOffset Now, DateTimeOffset Until);

/// The storage side of one queue, Hangfire-style: fetch due items under a lease, then
/// acknowledge them (complete, with their outcome) or give them back (release). A fetched item
/// is invisible to other workers until its lease runs out, so a crashed worker's items come
/// back by themselves. Every write is conditional on the lease still being the caller's: an
/// outcome written after the lease ran out (and someone else took the item) is ignored.
public interface ILeaseStore<TItem, TOutcome>
    where TItem : ILeased
    where TOutcome : ILeased
{
    /// Claims at most `limit` due items, oldest first, that nobody holds a live lease on.
    Task<IReadOnlyList<TItem>> ClaimAsync(Lease lease, int limit, CancellationToken ct);

    /// Records a batch of outcomes (one transaction where the database allows); returns the ids
    /// whose lease was still ours and so were recorded.
    Task<IReadOnlySet<long>> CompleteAsync(string owner, IReadOnlyList<TOutcome> outcomes, DateTimeOffset now, CancellationToken ct);

    /// Gives items back without an outcome: due as they were, free for any worker.
    Task ReleaseAsync(string owner, IReadOnlyCollection<long> ids, CancellationToken ct);

    /// Extends the lease on items still held by `lease.Owner` (and not yet run out); returns the
    /// ids renewed. Queues whose work always ends well within the lease need not support it.
    Task<IReadOnlySet<long>> RenewAsync(Lease lease, IReadOnlyCollection<long> ids, CancellationToken ct) =>
        throw new NotSupportedException("this queue does not renew leases");
}

/// The feature's side of one queue: what to do with a claimed batch.
public interface ILeaseWork<TItem, TOutcome>
    where TItem : ILeased
    where TOutcome : ILeased
{
    /// Decides, for each claimed item, whether it is finished at once (an outcome without work),
    /// given back, or started as a job. Items not handed to `dispatch` when this throws are
    /// released by the engine.
    Task DispatchAsync(IReadOnlyList<TItem> claimed, LeaseDispatch<TOutcome> dispatch, CancellationToken ct);

    /// The outcome to store when this one keeps failing on its own (say, a body the database
    /// refuses): by default the same again.
    TOutcome Degrade(TOutcome outcome) => outcome;

    /// Called after each batch of outcomes is written, with the ids whose lease was still ours
    /// (metrics, log lines, waking the claim for work the outcomes made due).
    void Recorded(IReadOnlyList<TOutcome> outcomes, IReadOnlySet<long> recorded)
    {
    }
}

public sealed record LeaseQueueSettings
{
    // What the queue does, for logs ("Sending due deliveries").
    public required string Work { get; init; }
    // Jobs running at once. A job is one item, or one batch for work that handles a batch at once.
    public required int MaxInFlight { get; init; }
    // The most items one claim takes.
    public required int ClaimBatch { get; init; }
    // Items a single free slot may claim: 1 for one job per item, ClaimBatch for a job per batch.
    public int ClaimPerSlot { get; init; } = 1;
    public required TimeSpan Lease { get; init; }
    // How often an idle queue looks for due items (a wake signal in this process ends the wait).
    public required TimeSpan Poll { get; init; }
    // The idle wait measured on the queue's TimeProvider rather than the wall clock: for
    // housekeeping passes minutes apart, which tests move on with a fake clock. Work queues
    // poll on the wall clock, so a fake clock in a test never stalls them.
    public bool PollOnClock { get; init; }
    // On stop, jobs in flight get this long to finish; then they are cancelled.
    public TimeSpan Drain { get; init; } = TimeSpan.FromSeconds(10);
    // Outcomes written in one CompleteAsync at most.
    public int CompleteBatch { get; init; } = 1000;
    // Prefix of the lease owner, so a row's owner says which queue holds it.
    public string OwnerPrefix { get; init; } = "";
    // Callers hand items over to this queue (Reserve, HandOver): a claim that is not behind
    // leaves them half the free room. A queue nobody hands over to claims all it has room for.
    public bool TakesHandOvers { get; init; }
}

/// What DispatchAsync does with each claimed item.
public sealed class LeaseDispatch<TOutcome> where TOutcome : ILeased
{
    private readonly Func<IReadOnlyCollection<long>, Func<CancellationToken, Task<TOutcome?>>, ValueTask<Task>> _start;
    private readonly Func<TOutcome, ValueTask> _finish;
    private readonly Func<IReadOnlyCollection<long>, CancellationToken, Task<IReadOnlySet<long>>> _renew;
    internal readonly HashSet<long> Handed = [];
    internal readonly List<long> Released = [];
    // The jobs started, for a pass that waits for them (LeaseQueue.PassAsync).
    internal readonly List<Task> Jobs = [];

    internal LeaseDispatch(
        string owner,
        Func<IReadOnlyCollection<long>, Func<CancellationToken, Task<TOutcome?>>, ValueTask<Task>> start,
        Func<TOutcome, ValueTask> finish,
        Func<IReadOnlyCollection<long>, CancellationToken, Task<IReadOnlySet<long>>> renew)
    {
        Owner = owner;
        _start = start;
        _finish = finish;
        _renew = renew;
    }

    /// Who holds the lease (for work that writes its own outcomes).
    public string Owner { get; }

    /// Records an outcome without running a job (a profile deleted, an order gone).
    public ValueTask FinishAsync(TOutcome outcome)
    {
        Handed.Add(outcome.Id);
        return _finish(outcome);
    }

    /// Gives the item back now, due as it was.
    public void Release(long id)
    {
        Handed.Add(id);
        Released.Add(id);
    }

    /// Starts a job for one item, once a slot is free, without waiting for it. The job gets a
    /// token cancelled when the drain on stop runs out; a job that ends by that cancellation has
    /// its item released. A job that returns null wrote its outcome itself; one that throws is
    /// logged, and its item comes back when the lease runs out.
    public ValueTask StartAsync(long id, Func<CancellationToken, Task<TOutcome?>> job) => StartAsync([id], job);

    /// Starts one job for several items (work done a batch at a time, like one SMTP connection
    /// for a batch of e-mails). Such a job writes its outcomes itself and returns null.
    public async ValueTask StartAsync(IReadOnlyCollection<long> ids, Func<CancellationToken, Task<TOutcome?>> job)
    {
        foreach (var id in ids)
        {
            Handed.Add(id);
        }
        Jobs.Add(await _start(ids, job));
    }

    /// Extends the lease on items this job holds; returns those still ours.
    public Task<IReadOnlySet<long>> RenewAsync(IReadOnlyCollection<long> ids, CancellationToken ct) => _renew(ids, ct);
}

/// One lease-queue engine for every background job (docs/delivery-engine.md): claims due items
/// under a lease when a slot is free, hands them to the feature's work, keeps up to MaxInFlight
/// jobs running without awaiting each other, and writes their outcomes back in batches from a
/// single writer (one transaction per batch), so the database sees a few statements per hundred
/// items rather than several per item. It waits on the wake signal or polls, and on stop drains:
/// jobs get Drain to finish, the rest are cancelled and their items released.
public sealed class LeaseQueue<TItem, TOutcome>
    where TItem : ILeased
    where TOutcome : ILeased
{
    private readonly LeaseQueueSettings _settings;
    private readonly ILeaseStore<TItem, TOutcome> _store;
    private readonly ILeaseWork<TItem, TOutcome> _work;
    private readonly WakeSignal _signal;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly SemaphoreSlim _slots;
    private readonly CancellationTokenSource _abort = new();
    private readonly Channel<Settled> _outcomes;

    // Items this worker has claimed and not yet settled. A lease that runs out while a job or
    // its write is slow lets the claim pick the item up again; this worker then leaves it to the
    // job already under way rather than running it a second time.
    private readonly ConcurrentDictionary<long, byte> _unfinished = new();

    // Room taken from the free slots by the claim in progress and by items promised to callers
    // that create them already leased (Reserve, HandOver), until they are started: neither
    // counts on slots the other is about to fill. On a queue that takes hand-overs, a claim that
    // is not behind takes half the free room (the last free slot when only one is left).
    private int _reserved;
    private volatile bool _running;
    // The last claim came back full: due items wait in the database and go first, so nothing is
    // handed over until the claim has caught up.
    private volatile bool _behind = true;

    // An outcome to record, or (Outcome null) an item to give back.
    private readonly record struct Settled(long Id, TOutcome? Outcome);

    public LeaseQueue(LeaseQueueSettings settings, ILeaseStore<TItem, TOutcome> store, ILeaseWork<TItem, TOutcome> work,
        WakeSignal signal, TimeProvider time, ILogger log)
    {
        _settings = settings;
        _store = store;
        _work = work;
        _signal = signal;
        _time = time;
        _log = log;
        _slots = new SemaphoreSlim(settings.MaxInFlight, settings.MaxInFlight);
        _outcomes = Channel.CreateBounded<Settled>(new BoundedChannelOptions(Math.Max(64, settings.MaxInFlight * 4)) { SingleReader = true });
        Owner = NewOwner(settings.OwnerPrefix);
    }

    /// Who holds this queue's leases: this process, uniquely (at most 64 characters).
    public string Owner { get; }

    public static string NewOwner(string prefix) =>
        $"{prefix}{Environment.MachineName[..Math.Min(Environment.MachineName.Length, 20)]}:{Environment.ProcessId}:{Guid.NewGuid():N}";

    /// Runs until `stopping`, then drains. Started off the host's start-up path: the first claim
    /// must not hold up the server.
    public async Task RunAsync(CancellationToken stopping)
    {
        await Task.Yield();
        var writer = Task.Run(WriteLoopAsync, CancellationToken.None);
        _running = !stopping.IsCancellationRequested;
        using var stop = stopping.Register(() => _running = false);
        await _signal.RunAsync(_settings.Poll, async ct =>
        {
            // Claim only when a slot is free.
            await _slots.WaitAsync(ct);
            _slots.Release();
            return await ClaimAndDispatchAsync(ct);
        }, _log, _settings.Work, stopping, _settings.PollOnClock ? _time : null);
        await DrainAsync();
        _outcomes.Writer.Complete();
        await writer;
    }

    /// One claim and dispatch, as the loop runs it; returns the items taken on (0: nothing due).
    public async Task<int> ClaimAndDispatchAsync(CancellationToken stopping) => (await ClaimAndDispatchCoreAsync(stopping)).Taken;

    /// One claim and dispatch that waits for the jobs it started and writes their outcomes
    /// itself, for a queue whose loop is not running: a test that moves a fake clock and runs
    /// passes by hand. Returns the items taken on.
    public async Task<int> PassAsync(CancellationToken stopping)
    {
        var (taken, jobs) = await ClaimAndDispatchCoreAsync(stopping);
        await Task.WhenAll(jobs);
        var batch = new List<Settled>();
        while (_outcomes.Reader.TryRead(out var settled))
        {
            batch.Add(settled);
        }
        if (batch.Count > 0)
        {
            await WriteAsync(batch);
        }
        return taken;
    }

    private async Task<(int Taken, IReadOnlyList<Task> Jobs)> ClaimAndDispatchCoreAsync(CancellationToken stopping)
    {
        stopping.ThrowIfCancellationRequested();
        // Once the claim has run the items are ours until the lease ends, so nothing after it is
        // cancelled by a stop: they are worked on (and recorded) or released, never left leased.
        var now = _time.GetUtcNow();
        // Caught up, a claim leaves half the free room to hand-overs: room it reserved for the
        // length of its round trip was room no hand-over could take, so each ingest meanwhile
        // left its deliveries to the next claim, which did the same again (bench/README.md).
        var limit = TakeRoom(_behind || !_settings.TakesHandOvers
            ? _settings.ClaimBatch
            : Math.Min(_settings.ClaimBatch, Math.Max(1, FreeRoom() / 2)));
        if (limit <= 0)
        {
            return (0, []);
        }
        try
        {
            var claimed = await _store.ClaimAsync(new Lease(Owner, now, now + _settings.Lease), limit, CancellationToken.None);
            _behind = claimed.Count >= limit;
            if (claimed.Count == 0)
            {
                return (0, []);
            }
            var fresh = claimed.Where(c => !_unfinished.ContainsKey(c.Id)).ToList();
            var dispatch = await DispatchAsync(fresh, _work.DispatchAsync);
            return (claimed.Count - dispatch.Released.Count, dispatch.Jobs);
        }
        finally
        {
            Unreserve(limit);
        }
    }

    // Hands leased items to the work; gives back those it released, and, when reading what the
    // work needs fails, those it did not get to, so they are due again now rather than when
    // their lease runs out.
    private async Task<LeaseDispatch<TOutcome>> DispatchAsync(
        IReadOnlyList<TItem> items, Func<IReadOnlyList<TItem>, LeaseDispatch<TOutcome>, CancellationToken, Task> work)
    {
        var ct = CancellationToken.None;
        var dispatch = new LeaseDispatch<TOutcome>(Owner, StartAsync, FinishAsync, RenewAsync);
        try
        {
            await work(items, dispatch, ct);
        }
        catch (Exception) when (items.Any(c => !dispatch.Handed.Contains(c.Id)))
        {
            try
            {
                await GiveBackAsync(items.Select(c => c.Id).Where(id => !dispatch.Handed.Contains(id)).ToList());
            }
            catch (Exception e)
            {
                _log.LogWarning(e, "{Work}: releasing claimed items failed; their lease will run out", _settings.Work);
            }
            throw;
        }
        if (dispatch.Released.Count > 0)
        {
            await GiveBackAsync(dispatch.Released);
        }
        return dispatch;
    }

    private async Task GiveBackAsync(IReadOnlyCollection<long> ids)
    {
        try
        {
            await _store.ReleaseAsync(Owner, ids, CancellationToken.None);
        }
        finally
        {
            foreach (var id in ids)
            {
                _unfinished.TryRemove(id, out _);
            }
        }
    }

    /// The lease an item created now for this queue is written with, by a caller that hands it
    /// over itself (HandOver) instead of leaving it to the next claim.
    public Lease LeaseFrom(DateTimeOffset now) => new(Owner, now, now + _settings.Lease);

    /// Room for up to `wanted` items that the caller is about to store already leased to this
    /// queue (LeaseFrom) and then hand over, saving the claim's round trip and commit. None while
    /// the queue is not running, while due items wait in the database (the last claim came back
    /// full: they go first), or when the free slots are spoken for. What is reserved is given
    /// back by HandOver, or by Unreserve when the items were not stored after all.
    public int Reserve(int wanted) => _running && !_behind ? TakeRoom(wanted) : 0;

    private int FreeRoom() => _slots.CurrentCount * _settings.ClaimPerSlot - Volatile.Read(ref _reserved);

    private int TakeRoom(int wanted)
    {
        while (wanted > 0)
        {
            var reserved = Volatile.Read(ref _reserved);
            var granted = Math.Min(wanted, _slots.CurrentCount * _settings.ClaimPerSlot - reserved);
            if (granted <= 0)
            {
                return 0;
            }
            if (Interlocked.CompareExchange(ref _reserved, reserved + granted, reserved) == reserved)
            {
                return granted;
            }
        }
        return 0;
    }

    public void Unreserve(int count) => Interlocked.Add(ref _reserved, -count);

    /// Works on items the caller has stored leased to this queue (at most what Reserve granted,
    /// `reserved`) as if a claim had just returned them, without waiting for it. Not awaited by
    /// the caller: what cannot be dispatched is released, and an item lost to a crash comes back
    /// when its lease runs out, like any claimed item. `dispatch`, when given, stands in for the
    /// work's DispatchAsync (say, with what the caller already read for the items).
    public void HandOver(
        IReadOnlyList<TItem> items, int reserved, Func<IReadOnlyList<TItem>, LeaseDispatch<TOutcome>, CancellationToken, Task>? dispatch = null)
    {
        // Ours from now on: a claim of this process that meets them again (their lease ran out
        // while they waited) leaves them to this hand-over.
        foreach (var item in items)
        {
            _unfinished[item.Id] = 0;
        }
        _ = Task.Run(() => HandOverAsync(items, reserved, dispatch ?? _work.DispatchAsync), CancellationToken.None);
    }

    private async Task HandOverAsync(
        IReadOnlyList<TItem> items, int reserved, Func<IReadOnlyList<TItem>, LeaseDispatch<TOutcome>, CancellationToken, Task> work)
    {
        var released = false;
        try
        {
            if (!_running)
            {
                // Stopping: give them back for whichever worker comes next.
                released = true;
                await GiveBackAsync(items.Select(i => i.Id).ToList());
                return;
            }
            var dispatch = await DispatchAsync(items, work);
            released = dispatch.Released.Count > 0;
        }
        catch (Exception e)
        {
            released = true;
            _log.LogWarning(e, "{Work}: items handed over could not all be started; those not given back wait for their lease to run out", _settings.Work);
        }
        finally
        {
            Unreserve(reserved);
            if (released)
            {
                // Due again (a receiver at its limit, a failed read): the claim looks for them.
                _signal.Notify();
            }
        }
    }

    private Task<IReadOnlySet<long>> RenewAsync(IReadOnlyCollection<long> ids, CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        return _store.RenewAsync(new Lease(Owner, now, now + _settings.Lease), ids, ct);
    }

    private ValueTask FinishAsync(TOutcome outcome)
    {
        _unfinished[outcome.Id] = 0;
        return _outcomes.Writer.WriteAsync(new Settled(outcome.Id, outcome), CancellationToken.None);
    }

    private async ValueTask<Task> StartAsync(IReadOnlyCollection<long> ids, Func<CancellationToken, Task<TOutcome?>> job)
    {
        await _slots.WaitAsync(CancellationToken.None);
        foreach (var id in ids)
        {
            _unfinished[id] = 0;
        }
        return RunJobAsync(ids, job);
    }

    private async Task RunJobAsync(IReadOnlyCollection<long> ids, Func<CancellationToken, Task<TOutcome?>> job)
    {
        try
        {
            TOutcome? outcome;
            try
            {
                outcome = await job(_abort.Token);
            }
            catch (OperationCanceledException) when (_abort.IsCancellationRequested)
            {
                foreach (var id in ids)
                {
                    Settle(new Settled(id, default));
                }
                return;
            }
            if (outcome is not null)
            {
                Settle(new Settled(outcome.Id, outcome));
            }
            else
            {
                foreach (var id in ids)
                {
                    _unfinished.TryRemove(id, out _);
                }
            }
        }
        catch (Exception e)
        {
            // The lease runs out and the item is tried again.
            _log.LogError(e, "{Work}: a job for {Ids} failed unexpectedly", _settings.Work, string.Join(", ", ids));
            foreach (var id in ids)
            {
                _unfinished.TryRemove(id, out _);
            }
        }
        finally
        {
            _slots.Release();
        }
    }

    private void Settle(Settled settled)
    {
        // The channel is bounded well above MaxInFlight, so this waits only when the writer is
        // far behind; once the queue has stopped the item is left to its lease.
        if (!_outcomes.Writer.TryWrite(settled))
        {
            _ = _outcomes.Writer.WriteAsync(settled).AsTask().ContinueWith(
                t => _log.LogWarning("{Work}: item {Id} stopped before its outcome was written; its lease will run out", _settings.Work, settled.Id),
                TaskContinuationOptions.OnlyOnFaulted);
        }
    }

    /// Graceful shutdown: jobs in flight get Drain to finish and be recorded; the rest are
    /// cancelled, and the items they held are released, due again for whichever worker comes next.
    // Measured on the wall clock: a stop takes real time, whatever clock the queue's due
    // times follow (a fake one in tests would never let the drain end).
    private async Task DrainAsync()
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        // Hand-overs under way hold a reservation until their jobs have started: they drain too.
        while ((_slots.CurrentCount < _settings.MaxInFlight || Volatile.Read(ref _reserved) > 0)
            && System.Diagnostics.Stopwatch.GetElapsedTime(started) < _settings.Drain)
        {
            await Task.Delay(50);
        }
        await _abort.CancelAsync();
        started = System.Diagnostics.Stopwatch.GetTimestamp();
        while (_slots.CurrentCount < _settings.MaxInFlight && System.Diagnostics.Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(5))
        {
            await Task.Delay(20);
        }
    }

    private async Task WriteLoopAsync()
    {
        var reader = _outcomes.Reader;
        var batch = new List<Settled>(_settings.CompleteBatch);
        while (await reader.WaitToReadAsync())
        {
            while (batch.Count < _settings.CompleteBatch && reader.TryRead(out var settled))
            {
                batch.Add(settled);
            }
            // An outcome is never dropped while the database is unreachable: keep trying. If the
            // batch itself is the problem, write its outcomes one by one, and store one that
            // still fails in its degraded form.
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await WriteAsync(batch);
                    break;
                }
                catch (Exception e)
                {
                    _log.LogError(e, "{Work}: recording {Count} outcomes failed (try {Attempt}); retrying", _settings.Work, batch.Count, attempt);
                    if (attempt >= 3 && batch.Count > 1)
                    {
                        foreach (var one in batch)
                        {
                            await WriteAloneAsync(one);
                        }
                        break;
                    }
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(5000, 100 * attempt)));
                }
            }
            batch.Clear();
        }
    }

    private async Task WriteAsync(IReadOnlyList<Settled> batch)
    {
        var released = batch.Where(s => s.Outcome is null).Select(s => s.Id).ToList();
        if (released.Count > 0)
        {
            await _store.ReleaseAsync(Owner, released, CancellationToken.None);
        }
        var outcomes = batch.Where(s => s.Outcome is not null).Select(s => s.Outcome!).ToList();
        if (outcomes.Count > 0)
        {
            var recorded = await _store.CompleteAsync(Owner, outcomes, _time.GetUtcNow(), CancellationToken.None);
            try
            {
                _work.Recorded(outcomes, recorded);
            }
            catch (Exception e)
            {
                // What is written stays written: a failing report must not write it again.
                _log.LogError(e, "{Work}: reporting {Count} recorded outcomes failed", _settings.Work, outcomes.Count);
            }
        }
        foreach (var settled in batch)
        {
            _unfinished.TryRemove(settled.Id, out _);
        }
    }

    private async Task WriteAloneAsync(Settled settled)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await WriteAsync([attempt <= 5 || settled.Outcome is null ? settled : settled with { Outcome = _work.Degrade(settled.Outcome) }]);
                return;
            }
            catch (Exception e)
            {
                _log.LogError(e, "{Work}: recording the outcome of {Id} failed (try {Attempt})", _settings.Work, settled.Id, attempt);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(5000, 100 * attempt)));
            }
        }
    }
}
