namespace Postback.Infrastructure;

/// Wakes a background worker in this process as soon as there is work for it, so it need not
/// wait for its next poll. Other processes sharing a PostgreSQL database find the work at their
/// next poll.
public class WakeSignal
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

    /// A worker's loop until the host stops: run a pass; when it found nothing to do, sleep
    /// until woken or until the next poll. A pass that fails is logged and tried again a
    /// second later.
    public async Task RunAsync(TimeSpan poll, Func<CancellationToken, Task<int>> pass, ILogger log, string work, CancellationToken stopping)
    {
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                try
                {
                    if (await pass(stopping) == 0)
                    {
                        await WaitAsync(poll, stopping);
                    }
                }
                catch (Exception e) when (!stopping.IsCancellationRequested)
                {
                    log.LogError(e, "{Work} failed; trying again shortly", work);
                    await Task.Delay(TimeSpan.FromSeconds(1), stopping);
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }
}
