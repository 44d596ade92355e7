namespace Postback.Deliveries;

/// Wakes the dispatcher in this process as soon as an event schedules a delivery, so a delivery
/// with no export delay goes out at once rather than at the next poll. Other processes sharing
/// a PostgreSQL database find it at their next poll.
public sealed class DeliverySignal
{
    private readonly SemaphoreSlim _wake = new(0, 1);

    public void Notify()
    {
        if (_wake.CurrentCount == 0)
        {
            try
            {
                _wake.Release();
            }
            catch (SemaphoreFullException)
            {
                // Another notifier got there first: one wake-up is enough.
            }
        }
    }

    public Task<bool> WaitAsync(TimeSpan timeout, CancellationToken ct) => _wake.WaitAsync(timeout, ct);
}
