using Microsoft.Extensions.Logging.Abstractions;
using Postback.Infrastructure;
using Postback.Tests.Support;

namespace Postback.Tests.Deliveries;

/// The lease-queue engine's hand-over (docs/delivery-engine.md, "Hand-over"): items a caller
/// stores already leased to the queue and hands over instead of leaving them to the claim.
public sealed class HandOverTests
{
    private sealed record Item(long Id) : ILeased;

    // Due items in memory: a claim takes up to its limit of them, oldest first.
    private sealed class Store : ILeaseStore<Item, Item>
    {
        public readonly Queue<long> Due = new();
        public readonly List<long> Released = [];
        public int Claims;
        public int EmptyClaims;
        // Set: the next claim tells its limit through Entered and waits for Hold.
        public TaskCompletionSource? Hold;
        public readonly TaskCompletionSource<int> Entered = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task<IReadOnlyList<Item>> ClaimAsync(Lease lease, int limit, CancellationToken ct)
        {
            if (Hold is { } hold)
            {
                Entered.TrySetResult(limit);
                await hold.Task;
            }
            lock (this)
            {
                var claimed = new List<Item>();
                while (claimed.Count < limit && Due.TryDequeue(out var id))
                {
                    claimed.Add(new Item(id));
                }
                Claims++;
                EmptyClaims += claimed.Count == 0 ? 1 : 0;
                return claimed;
            }
        }

        public Task<IReadOnlySet<long>> CompleteAsync(string owner, IReadOnlyList<Item> outcomes, DateTimeOffset now, CancellationToken ct) =>
            Task.FromResult<IReadOnlySet<long>>(outcomes.Select(o => o.Id).ToHashSet());

        public Task ReleaseAsync(string owner, IReadOnlyCollection<long> ids, CancellationToken ct)
        {
            lock (this)
            {
                Released.AddRange(ids);
            }
            return Task.CompletedTask;
        }
    }

    // Finishes every item at once, or releases those it is told to.
    private sealed class Work(HashSet<long>? release = null) : ILeaseWork<Item, Item>
    {
        public readonly List<long> Dispatched = [];

        public async Task DispatchAsync(IReadOnlyList<Item> claimed, LeaseDispatch<Item> dispatch, CancellationToken ct)
        {
            foreach (var item in claimed)
            {
                lock (Dispatched)
                {
                    Dispatched.Add(item.Id);
                }
                if (release?.Contains(item.Id) == true)
                {
                    dispatch.Release(item.Id);
                }
                else
                {
                    await dispatch.FinishAsync(item);
                }
            }
        }
    }

    private static LeaseQueue<Item, Item> Queue(Store store, Work work, WakeSignal signal, bool takesHandOvers = true) =>
        new(new LeaseQueueSettings { Work = "test", MaxInFlight = 4, ClaimBatch = 4, Lease = TimeSpan.FromMinutes(1), Poll = TimeSpan.FromHours(1), TakesHandOvers = takesHandOvers },
            store, work, signal, TimeProvider.System, NullLogger.Instance);

    private static Task Until(Func<bool> condition, string what) =>
        DeliveryScenario.WaitUntilAsync(condition, TimeSpan.FromSeconds(30), () => "timed out waiting until " + what, 10);

    [Fact]
    public async Task Nothing_is_handed_over_while_due_items_wait_in_the_database_and_then_only_as_many_as_there_are_free_slots()
    {
        var store = new Store();
        for (var id = 1; id <= 6; id++)
        {
            store.Due.Enqueue(id);
        }
        var work = new Work();
        var signal = new WakeSignal();
        var queue = Queue(store, work, signal);
        Assert.Equal(0, queue.Reserve(1));

        using var stop = new CancellationTokenSource();
        var running = queue.RunAsync(stop.Token);
        // The backlog goes first: 4, then 2, then a claim that finds nothing.
        await Until(() => store.EmptyClaims > 0, "the backlog was claimed");
        await Until(() => { lock (work.Dispatched) { return work.Dispatched.Count == 6; } }, "the backlog was dispatched");
        Assert.Equal([1, 2, 3, 4, 5, 6], work.Dispatched);

        // Caught up: room for at most the free slots.
        var granted = 0;
        await Until(() => (granted = queue.Reserve(10)) > 0, "the queue has room");
        Assert.Equal(4, granted);
        Assert.Equal(0, queue.Reserve(1));
        queue.HandOver([new Item(7), new Item(8)], 4);
        await Until(() => { lock (work.Dispatched) { return work.Dispatched.Count == 8; } }, "the items handed over were dispatched");
        Assert.Equal([7, 8], work.Dispatched[6..]);
        await Until(() => queue.Reserve(4) == 4, "the reservation came back");
        queue.Unreserve(4);

        await stop.CancelAsync();
        await running;
        Assert.Empty(store.Released);
    }

    [Theory]
    [InlineData(true, 2)]
    [InlineData(false, 4)]
    public async Task A_claim_under_way_while_caught_up_leaves_half_the_free_room_to_hand_overs_on_a_queue_that_takes_them(
        bool takesHandOvers, int claimLimit)
    {
        var store = new Store();
        var signal = new WakeSignal();
        var queue = Queue(store, new Work(), signal, takesHandOvers);
        using var stop = new CancellationTokenSource();
        var running = queue.RunAsync(stop.Token);
        await Until(() => store.EmptyClaims > 0, "the first claim found nothing");

        store.Hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        signal.Notify();
        Assert.Equal(claimLimit, await store.Entered.Task.WaitAsync(TimeSpan.FromSeconds(30)));
        // While it runs, an ingest can still hand over into what the claim left.
        Assert.Equal(4 - claimLimit, queue.Reserve(4));
        queue.Unreserve(4 - claimLimit);
        store.Hold.SetResult();

        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task Items_handed_over_that_the_work_releases_are_given_back_and_wake_the_claim()
    {
        var store = new Store();
        var work = new Work(release: [21]);
        var signal = new WakeSignal();
        var queue = Queue(store, work, signal);
        using var stop = new CancellationTokenSource();
        var running = queue.RunAsync(stop.Token);
        var granted = 0;
        await Until(() => (granted = queue.Reserve(2)) == 2, "the queue has room");

        var claimsBefore = store.Claims;
        queue.HandOver([new Item(20), new Item(21)], granted);
        await Until(() => { lock (store) { return store.Released.Contains(21); } }, "the released item was given back");
        await Until(() => store.Claims > claimsBefore, "the claim looked again");
        Assert.Equal([21], store.Released);

        await stop.CancelAsync();
        await running;
    }

    [Fact]
    public async Task Items_reserved_before_a_stop_and_handed_over_after_it_are_given_back_and_the_stop_waits_for_them()
    {
        var store = new Store();
        var work = new Work();
        var queue = Queue(store, work, new WakeSignal());
        using var stop = new CancellationTokenSource();
        var running = queue.RunAsync(stop.Token);
        var granted = 0;
        await Until(() => (granted = queue.Reserve(2)) == 2, "the queue has room");

        await stop.CancelAsync();
        Assert.False(running.IsCompleted, "the stop did not wait for the reservation");
        queue.HandOver([new Item(30), new Item(31)], granted);
        await running;
        Assert.Equal([30, 31], store.Released.Order());
        Assert.Empty(work.Dispatched);
        Assert.Equal(0, queue.Reserve(1));
    }
}
