using Postback.Infrastructure;

namespace Postback.Deliveries;

/// Wakes the dispatcher in this process as soon as an event schedules a delivery, so a delivery
/// with no export delay goes out at once rather than at the next poll.
public sealed class DeliverySignal : WakeSignal;
