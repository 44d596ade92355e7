using Postback.Infrastructure;

namespace Postback.Notifications;

/// "Postback:Smtp": where alert e-mails go out. The password is only ever handed to the SMTP
/// client; it is never logged or shown.
public sealed class SmtpOptions : ISettings
{
    public const string Section = "Postback:Smtp";

    public string? Host { get; set; }
    public int Port { get; set; } = 25;
    public string? From { get; set; }
    public string? Username { get; set; }
    public string? Password { get; set; }
    // null: TLS on connect for port 465, STARTTLS whenever the server offers it otherwise.
    // true: TLS required (on connect for 465, STARTTLS otherwise). false: plain SMTP.
    public bool? UseTls { get; set; }
    // Whether the user name and password may go to a server that offers no TLS (in clear, for
    // anyone on the path to read). Off: such a server gets nothing, and the mail waits.
    public bool AllowPlainAuth { get; set; }
    public int TimeoutSeconds { get; set; } = 30;
    // Off only for a process that should never send e-mail; the outbox keeps what it would send.
    public bool Enabled { get; set; } = true;
    // A message that could not be sent is tried again after this, doubling up to the cap, for
    // as long as it takes: an alert is never dropped.
    public double FirstRetrySeconds { get; set; } = 5;
    public double RetryCapSeconds { get; set; } = 600;
    public int PollMilliseconds { get; set; } = 1000;
    public int LeaseSeconds { get; set; } = 120;
    public int ClaimBatch { get; set; } = 50;

    public override string ToString() => $"{Host}:{Port} from {From}";

    public void Check(SettingChecks check)
    {
        check.Range(nameof(Port), Port, 1, 65_535);
        if (!string.IsNullOrWhiteSpace(From) && !MimeKit.MailboxAddress.TryParse(From, out _))
        {
            check.Fail(nameof(From), $"must be an e-mail address such as alerts@example.com or \"Postback <alerts@example.com>\"; it is '{Text.Clip(From, 200, "…")}'");
        }
        check.Range(nameof(TimeoutSeconds), TimeoutSeconds, 1, 3_600);
        check.Range(nameof(FirstRetrySeconds), FirstRetrySeconds, 0.001, 86_400);
        check.Range(nameof(RetryCapSeconds), RetryCapSeconds, FirstRetrySeconds, 86_400 * 7);
        check.Range(nameof(PollMilliseconds), PollMilliseconds, 1, 3_600_000);
        check.Range(nameof(LeaseSeconds), LeaseSeconds, 1, 86_400);
        check.Range(nameof(ClaimBatch), ClaimBatch, 1, 10_000);
    }
}

public sealed class EmailSignal : WakeSignal;
