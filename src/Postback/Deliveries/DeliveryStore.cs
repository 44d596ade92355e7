using Postback.Infrastructure;

namespace Postback.Deliveries;

public sealed record ClaimedDelivery(
    long Id, long OrganizationId, long ProfileId, long OrderKey, long OrderId, string? CustomerId,
    string CustomerType, string Endpoint, int Attempts, DateTimeOffset FirstDueAt) : ILeased;

/// What an attempt, or a decision not to attempt, does to a delivery.
public sealed record DeliveryOutcome(ClaimedDelivery Delivery, string Status, DateTimeOffset? NextDueAt, DeliveryAttempt? Attempt, string? Error, int? StatusCode) : ILeased
{
    public long Id => Delivery.Id;
}

/// The delivery queue's storage (Storage/DeliveryStore.cs, one implementation per database).
/// Completing an outcome also records its attempt and, for a first attempt, the customer's
/// history line, in the same transaction, only while the lease is still the caller's.
public interface IDeliveryStore : ILeaseStore<ClaimedDelivery, DeliveryOutcome>
{
    /// A claim that skips deliveries to endpoints on hold.
    Task<IReadOnlyList<ClaimedDelivery>> ClaimAsync(Lease lease, int limit, IReadOnlyList<string> blockedEndpoints, CancellationToken ct);

    Task<IReadOnlyList<ClaimedDelivery>> ILeaseStore<ClaimedDelivery, DeliveryOutcome>.ClaimAsync(Lease lease, int limit, CancellationToken ct) =>
        ClaimAsync(lease, limit, [], ct);
}
