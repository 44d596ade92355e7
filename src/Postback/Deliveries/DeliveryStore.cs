using Postback.Infrastructure;

namespace Postback.Deliveries;

public sealed record ClaimedDelivery(
    long Id, long OrganizationId, long ProfileId, long OrderKey, long OrderId, string? CustomerId,
    string CustomerType, string Endpoint, int Attempts, DateTimeOffset FirstDueAt, string? TraceParent = null, long EventKey = 0, bool Ordered = false) : ILeased;

/// What an attempt, or a decision not to attempt, does to a delivery.
public sealed record DeliveryOutcome(
    ClaimedDelivery Delivery, string Status, DateTimeOffset? NextDueAt, DeliveryAttempt? Attempt, string? Error, int? StatusCode,
    IReadOnlyList<CaptureNote>? Captures = null) : ILeased
{
    public long Id => Delivery.Id;
}

/// The delivery queue's storage (Storage/Stores/DeliveryStore.cs, one implementation per database).
/// Completing an outcome also records its attempt, for a first attempt the customer's history
/// line, and the values a success captured onto its order, in the same transaction, only while
/// the lease is still the caller's.
public interface IDeliveryStore : ILeaseStore<ClaimedDelivery, DeliveryOutcome>
{
    /// A claim that skips deliveries to endpoints on hold. Ordered deliveries wait for the
    /// earlier ones of their order and profile (docs/ordering.md).
    Task<IReadOnlyList<ClaimedDelivery>> ClaimAsync(Lease lease, int limit, IReadOnlyList<string> blockedEndpoints, CancellationToken ct);

    Task<IReadOnlyList<ClaimedDelivery>> ILeaseStore<ClaimedDelivery, DeliveryOutcome>.ClaimAsync(Lease lease, int limit, CancellationToken ct) =>
        ClaimAsync(lease, limit, [], ct);

    /// Coalescing (a profile with coalesce on): when a delivery goes out for the first time, the
    /// later deliveries of its order and profile that were scheduled before it came due, and
    /// are still waiting, go out with it: each is recorded coalesced into it, and it takes the
    /// customer type of the latest. A later one being claimed or sent at this moment is left
    /// alone (it is leased). Returns that customer type, or null when there was nothing to
    /// coalesce.
    Task<string?> CoalesceAsync(string owner, ClaimedDelivery delivery, DateTimeOffset now, CancellationToken ct);
}
