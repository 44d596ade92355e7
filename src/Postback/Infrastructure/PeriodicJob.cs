namespace Postback.Infrastructure;

/// A housekeeping pass run every `interval` (and once at start) on the lease-queue engine: the
/// queue holds one item, due again `interval` after the last pass ended. It lives in this
/// process only; each hub process runs its own passes, so a pass must be safe to run in two
/// processes at once (batched deletes and conditional updates are).
public sealed class PeriodicJob
{
    private readonly LeaseQueue<Pass, Pass> _queue;

    public sealed record Pass(long Id) : ILeased;

    public PeriodicJob(string work, TimeSpan interval, Func<CancellationToken, Task> pass, TimeProvider time, ILogger log)
    {
        var store = new OneItem(interval, time);
        _queue = new(new LeaseQueueSettings
        {
            Work = work,
            MaxInFlight = 1,
            ClaimBatch = 1,
            Lease = interval,
            Poll = interval,
            PollOnClock = true,
        }, store, new Work(pass, log, work), new WakeSignal(), time, log);
    }

    public Task RunAsync(CancellationToken stopping) => _queue.RunAsync(stopping);

    private sealed class Work(Func<CancellationToken, Task> pass, ILogger log, string work) : ILeaseWork<Pass, Pass>
    {
        public async Task DispatchAsync(IReadOnlyList<Pass> claimed, LeaseDispatch<Pass> dispatch, CancellationToken ct)
        {
            foreach (var p in claimed)
            {
                await dispatch.StartAsync(p.Id, async abort =>
                {
                    try
                    {
                        await pass(abort);
                    }
                    catch (Exception e) when (!abort.IsCancellationRequested)
                    {
                        // The next pass tries again; nothing here is lost by waiting.
                        log.LogError(e, "{Work} failed", work);
                    }
                    return p;
                });
            }
        }
    }

    private sealed class OneItem(TimeSpan interval, TimeProvider time) : ILeaseStore<Pass, Pass>
    {
        private DateTimeOffset _due = DateTimeOffset.MinValue;
        private bool _running;

        public Task<IReadOnlyList<Pass>> ClaimAsync(Lease lease, int limit, CancellationToken ct)
        {
            lock (this)
            {
                if (_running || lease.Now < _due)
                {
                    return Task.FromResult<IReadOnlyList<Pass>>([]);
                }
                _running = true;
                return Task.FromResult<IReadOnlyList<Pass>>([new Pass(1)]);
            }
        }

        public Task<IReadOnlySet<long>> CompleteAsync(string owner, IReadOnlyList<Pass> outcomes, DateTimeOffset now, CancellationToken ct)
        {
            lock (this)
            {
                _running = false;
                _due = time.GetUtcNow() + interval;
            }
            return Task.FromResult<IReadOnlySet<long>>(new HashSet<long> { 1 });
        }

        public Task ReleaseAsync(string owner, IReadOnlyCollection<long> ids, CancellationToken ct)
        {
            lock (this)
            {
                _running = false;
            }
            return Task.CompletedTask;
        }
    }
}
