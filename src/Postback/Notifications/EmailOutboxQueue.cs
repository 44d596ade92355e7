using Postback.Infrastructure;

namespace Postback.Notifications;

/// What sending one message did: sent, rejected for good, or (Status pending) due again at
/// NextDueAt. Each counts as an attempt.
public sealed record EmailOutcome(long Id, string Status, string? Error, DateTimeOffset? NextDueAt) : ILeased;

/// The e-mail outbox's storage (Storage/Stores/EmailOutboxStore.cs). Claims return whole messages; a
/// slow server over a long batch can outlast the lease, so the sender renews each message's lease
/// before sending it, and every write needs the lease to still be the caller's.
public interface IEmailOutboxStore : ILeaseStore<OutboxEmail, EmailOutcome>;
