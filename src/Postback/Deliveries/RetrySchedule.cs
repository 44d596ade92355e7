namespace Postback.Deliveries;

/// When to try a failed delivery again. The CRMs promise to "continuously re-attempt to post to
/// the webhook until it is successful" (seed 001): the schedule never ends on its own, it only
/// grows to a cap. A profile may set a give-up age after which the delivery is failed instead.
public sealed record RetryPolicy(TimeSpan FirstDelay, TimeSpan Cap, TimeSpan? GiveUpAfter)
{
    public static readonly TimeSpan DefaultCap = TimeSpan.FromHours(1);
    public static readonly RetryPolicy Default = new(TimeSpan.FromSeconds(2), DefaultCap, null);

    // Retry-After is honoured, but a receiver cannot park a delivery for longer than this.
    public static readonly TimeSpan MaxRetryAfter = TimeSpan.FromHours(24);
}

public static class RetrySchedule
{
    /// The delay before attempt number <paramref name="attemptsSoFar"/> + 1: exponential from
    /// the first delay (2 s, 4 s, 8 s, ...), capped, with ±20% jitter so a backlog does not come
    /// back as one thundering herd. <paramref name="random"/> is in [0, 1).
    public static TimeSpan Backoff(RetryPolicy policy, int attemptsSoFar, double random)
    {
        var exponent = Math.Clamp(attemptsSoFar - 1, 0, 30);
        var raw = policy.FirstDelay.TotalMilliseconds * Math.Pow(2, exponent);
        var capped = Math.Min(raw, policy.Cap.TotalMilliseconds);
        var jittered = capped * (0.8 + 0.4 * random);
        return TimeSpan.FromMilliseconds(Math.Min(jittered, policy.Cap.TotalMilliseconds));
    }

    /// The next due time after a failed attempt, or null when the delivery should give up.
    public static DateTimeOffset? NextAttempt(RetryPolicy policy, int attemptsSoFar, DateTimeOffset now, DateTimeOffset firstDueAt, TimeSpan? retryAfter, double random)
    {
        if (policy.GiveUpAfter is { } giveUp && now - firstDueAt >= giveUp)
        {
            return null;
        }
        var delay = retryAfter is { } after && after > TimeSpan.Zero
            ? (after < RetryPolicy.MaxRetryAfter ? after : RetryPolicy.MaxRetryAfter)
            : Backoff(policy, attemptsSoFar, random);
        return now + delay;
    }
}
