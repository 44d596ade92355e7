using Postback.ExportProfiles;
using Postback.Infrastructure;
using Postback.Orders;

namespace Postback.Deliveries;

/// Wakes the dispatcher in this process as soon as an event schedules a delivery, so a delivery
/// with no export delay goes out at once rather than at the next poll. Better still, an ingest
/// may store such deliveries already leased to this process's worker and hand them over
/// (Reserve, HandOver): they go out without waiting for a claim, its round trip and its
/// durable commit. The database stays the truth: a handed-over delivery is an ordinary leased
/// row, which comes back to any worker when its lease runs out, as after a crash.
public sealed class DeliverySignal : WakeSignal
{
    private LeaseQueue<ClaimedDelivery, DeliveryOutcome>? _queue;
    private EndpointHealth? _health;
    private DeliveryWorker? _worker;

    internal void Attach(LeaseQueue<ClaimedDelivery, DeliveryOutcome> queue, EndpointHealth health, DeliveryWorker? worker = null)
    {
        _health = health;
        _worker = worker;
        _queue = queue;
    }

    /// Room for up to `wanted` deliveries to store leased (0 when no worker runs here, due
    /// deliveries wait for its claim, or its slots are taken); what Reserve grants goes back
    /// through HandOver or Unreserve.
    public int Reserve(int wanted) => _queue?.Reserve(wanted) ?? 0;

    public void Unreserve(int count) => _queue?.Unreserve(count);

    /// The lease to store a reserved delivery with.
    public Lease LeaseFrom(DateTimeOffset now) =>
        (_queue ?? throw new InvalidOperationException("no delivery worker to lease to")).LeaseFrom(now);

    /// Receivers the worker holds back right now (open circuit, probing, at their in-flight
    /// limit): their deliveries wait for a claim rather than being handed over.
    public IReadOnlyList<string> Held(DateTimeOffset now) => _health?.Blocked(now) ?? [];

    /// The stored, leased deliveries, for the worker to send now, with what the ingest read for
    /// them: the worker need not read it again.
    public void HandOver(IReadOnlyList<ClaimedDelivery> deliveries, int reserved, HandOverContext context)
    {
        var queue = _queue ?? throw new InvalidOperationException("no delivery worker to hand over to");
        var worker = _worker;
        queue.HandOver(deliveries, reserved, worker is null ? null : (items, dispatch, ct) => worker.DispatchAsync(items, context, dispatch, ct));
    }
}

/// What an ingest hands over with its deliveries: their orders as it stored them (by order key),
/// the profiles it routed them by (by id), and the names of the orders' campaigns (by
/// organization and campaign id; null when it did not look them all up).
public sealed record HandOverContext(
    IReadOnlyDictionary<long, OrderData> Orders, IReadOnlyDictionary<long, ExportProfile> Profiles,
    IReadOnlyDictionary<(long, string), string>? CampaignNames);
