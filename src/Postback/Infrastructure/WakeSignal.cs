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

    /// Waits until woken or until `timeout` has passed on `clock` (a housekeeping pass whose
    /// interval tests move on with a fake clock).
    public async Task WaitAsync(TimeSpan timeout, TimeProvider clock, CancellationToken ct)
    {
        using var either = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var woken = _wake.WaitAsync(either.Token);
        var elapsed = Task.Delay(timeout, clock, either.Token);
        var first = await Task.WhenAny(woken, elapsed);
        await either.CancelAsync();
        // The loser ends cancelled; a wake-up it took after all is passed on, not lost.
        try
        {
            await woken;
            if (first != woken)
            {
                Notify();
            }
        }
        catch (OperationCanceledException)
        {
        }
        try
        {
            await elapsed;
        }
        catch (OperationCanceledException)
        {
        }
        ct.ThrowIfCancellationRequested();
    }

    /// A worker's loop until the host stops: run a pass; when it found nothing to do, sleep
    /// until woken or until the next poll. A pass that fails is logged and tried again a
    /// second later.
    public async Task RunAsync(TimeSpan poll, Func<CancellationToken, Task<int>> pass, ILogger log, string work, CancellationToken stopping, TimeProvider? clock = null)
    {
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                try
                {
                    if (await pass(stopping) == 0)
                    {
                        if (clock is null)
                        {
                            await WaitAsync(poll, stopping);
                        }
                        else
                        {
                            await WaitAsync(poll, clock, stopping);
                        }
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
