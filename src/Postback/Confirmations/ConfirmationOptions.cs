using Postback.Infrastructure;
using Postback.Notifications;

namespace Postback.Confirmations;

/// "Postback:Confirmation": how confirmations are sent and retried.
public sealed class ConfirmationOptions : ISettings
{
    public const string Section = "Postback:Confirmation";

    // Off only for a process that should take API traffic but never send.
    public bool Enabled { get; set; } = true;
    // "A few times": a network error, a timeout or a 5xx/408/429 answer is tried again until
    // this many attempts in all, 2 s, 4 s, 8 s apart (±20%), then the confirmation fails.
    public int MaxAttempts { get; set; } = 4;
    public double FirstRetrySeconds { get; set; } = 2;
    public double RetryCapSeconds { get; set; } = 300;
    public int PollMilliseconds { get; set; } = 500;
    // Must be well above Postback:Outbound:TimeoutSeconds.
    public int LeaseSeconds { get; set; } = 60;
    public int MaxInFlight { get; set; } = 32;

    public void Check(SettingChecks check)
    {
        check.Range(nameof(MaxAttempts), MaxAttempts, 1, 100);
        check.Range(nameof(FirstRetrySeconds), FirstRetrySeconds, 0.001, 86_400);
        check.Range(nameof(RetryCapSeconds), RetryCapSeconds, FirstRetrySeconds, 86_400);
        check.Range(nameof(PollMilliseconds), PollMilliseconds, 1, 3_600_000);
        check.Range(nameof(LeaseSeconds), LeaseSeconds, 1, 86_400);
        check.Range(nameof(MaxInFlight), MaxInFlight, 1, 10_000);
    }
}

public sealed class ConfirmationSignal : WakeSignal;
