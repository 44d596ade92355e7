using Postback.Deliveries;
using Postback.Infrastructure;
using Postback.Notifications;

namespace Postback.Confirmations;

public sealed record ClaimedConfirmation(long Id, int Round, int Attempts) : ILeased;

/// What one attempt (or a decision not to attempt) does to a confirmation: its state afterwards,
/// and what is written with it in the same transaction.
public sealed record ConfirmationOutcome(
    ClaimedConfirmation Claimed, OrderConfirmation After, ConfirmationAttempt? Attempt, HistoryEntry? History, IReadOnlyList<OutboxEmail> Alerts) : ILeased
{
    public long Id => Claimed.Id;
}

/// The confirmation queue's storage (Storage/Stores/ConfirmationStore.cs). An outcome is written only
/// while the caller still holds the lease on that round: a worker whose lease ran out (and an
/// operator reconfirmed, or another worker took it) leaves no trace.
public interface IConfirmationStore : ILeaseStore<ClaimedConfirmation, ConfirmationOutcome>;
