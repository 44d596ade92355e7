using System.Globalization;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MimeKit;
using Postback.Deliveries;
using Postback.Infrastructure;

namespace Postback.Notifications;

/// Sends the e-mail outbox over SMTP (MailKit). Due rows are claimed under a lease, sent over
/// one connection, and each is marked sent the moment the server has accepted it, so a failure
/// halfway through a batch re-sends none of the ones before it. A message that could not be
/// sent (server down, connection lost, 4xx) is due again after a backoff driven by TimeProvider,
/// for as long as it takes. The one window for a repeat is a crash between the server's "250"
/// and our mark; each message carries a stable Message-ID, so a repeat is recognisable.
public static class EmailSetup
{
    public static IServiceCollection AddEmailOutbox(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSettings<SmtpOptions>(configuration, SmtpOptions.Section);
        services.AddSingleton<EmailSignal>();
        services.AddHostedService<EmailSender>();
        return services;
    }
}

public sealed class EmailSender : BackgroundService, ILeaseWork<OutboxEmail, EmailOutcome>
{
    private readonly IEmailOutboxStore _store;
    private readonly SmtpOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<EmailSender> _log;
    private readonly LeaseQueue<OutboxEmail, EmailOutcome> _queue;

    public EmailSender(IEmailOutboxStore store, EmailSignal signal, IOptions<SmtpOptions> options, TimeProvider time, ILogger<EmailSender> log)
    {
        (_store, _options, _time, _log) = (store, options.Value, time, log);
        // One job at a time, a claimed batch per job, sent over one connection.
        _queue = new(new LeaseQueueSettings
        {
            Work = "Sending the e-mail outbox",
            OwnerPrefix = "m:",
            MaxInFlight = 1,
            ClaimBatch = _options.ClaimBatch,
            ClaimPerSlot = _options.ClaimBatch,
            Lease = TimeSpan.FromSeconds(_options.LeaseSeconds),
            Poll = TimeSpan.FromMilliseconds(_options.PollMilliseconds),
        }, store, this, signal, time, log);
    }

    protected override Task ExecuteAsync(CancellationToken stopping)
    {
        if (!_options.Enabled)
        {
            return Task.CompletedTask;
        }
        if (string.IsNullOrWhiteSpace(_options.Host) || string.IsNullOrWhiteSpace(_options.From))
        {
            _log.LogWarning("Postback:Smtp:Host or Postback:Smtp:From is not set: alert e-mails are kept in the outbox and sent once SMTP is configured");
            return Task.CompletedTask;
        }
        return _queue.RunAsync(stopping);
    }

    public async Task DispatchAsync(IReadOnlyList<OutboxEmail> claimed, LeaseDispatch<EmailOutcome> dispatch, CancellationToken ct)
    {
        if (claimed.Count > 0)
        {
            // The messages are ours: each one ends sent, rejected or due again, whatever the stop.
            await dispatch.StartAsync(claimed.Select(m => m.Id).ToList(), _ => SendAsync(claimed, dispatch));
        }
    }

    private async Task<EmailOutcome?> SendAsync(IReadOnlyList<OutboxEmail> claimed, LeaseDispatch<EmailOutcome> dispatch)
    {
        var ct = CancellationToken.None;
        using var client = new SmtpClient { Timeout = _options.TimeoutSeconds * 1000 };
        var pending = new Queue<OutboxEmail>(claimed);
        try
        {
            await client.ConnectAsync(_options.Host!, _options.Port, Security(), ct);
            if (!string.IsNullOrEmpty(_options.Username))
            {
                if (!client.IsSecure && !_options.AllowPlainAuth)
                {
                    throw new InvalidOperationException(
                        "the SMTP server offers no TLS (no STARTTLS), and the password is not sent in clear; set Postback:Smtp:AllowPlainAuth to allow it");
                }
                await client.AuthenticateAsync(_options.Username, _options.Password ?? "", ct);
            }
            while (pending.TryPeek(out var email))
            {
                // A slow server over a long batch can outlast the lease, and another process may
                // then have claimed this message: it is sent only while the lease is still ours,
                // and each send starts with a fresh one.
                if ((await dispatch.RenewAsync([email.Id], ct)).Count == 0)
                {
                    _log.LogWarning("Alert e-mail {EmailId} was taken over by another sender while this batch was being sent; it is left to that one", email.Id);
                    pending.Dequeue();
                    continue;
                }
                MailboxAddress to;
                try
                {
                    to = MailboxAddress.Parse(email.Recipient);
                }
                catch (ParseException e)
                {
                    // An address MailKit cannot read will never be sent: this one is rejected,
                    // the rest of the batch goes on.
                    _log.LogWarning("Alert e-mail {EmailId} has a recipient that cannot be parsed; it is not sent", email.Id);
                    await MarkAsync(dispatch, email, EmailStatus.Rejected, $"the recipient address cannot be used: {e.Message}");
                    pending.Dequeue();
                    continue;
                }
                try
                {
                    await client.SendAsync(ToMessage(email, to), ct);
                    await MarkAsync(dispatch, email, EmailStatus.Sent, null);
                    pending.Dequeue();
                }
                catch (SmtpCommandException e) when (e.ErrorCode == SmtpErrorCode.RecipientNotAccepted && (int)e.StatusCode >= 500)
                {
                    _log.LogWarning("The SMTP server refused alert recipient {Recipient} for good: {Status}", email.Recipient, (int)e.StatusCode);
                    await MarkAsync(dispatch, email, EmailStatus.Rejected, $"the SMTP server refused the recipient: {(int)e.StatusCode} {e.Message}");
                    pending.Dequeue();
                }
                catch (SmtpCommandException e)
                {
                    // The server is up but would not take this one now (4xx, or a 5xx about the
                    // message itself): try it again later, and go on with the others.
                    await RescheduleAsync(dispatch, email, $"the SMTP server answered {(int)e.StatusCode}: {e.Message}");
                    pending.Dequeue();
                }
            }
            await client.DisconnectAsync(quit: true, ct);
        }
        catch (Exception e)
        {
            // Server down, TLS or login refused, connection lost, timeout: whatever it was, the
            // messages not yet accepted stay in the outbox and come due again.
            _log.LogWarning("Could not send {Count} alert e-mail(s) through {Server}: {Error}; they stay in the outbox", pending.Count, _options.ToString(), e.Message);
            foreach (var email in pending)
            {
                await RescheduleAsync(dispatch, email, "could not send through the SMTP server: " + e.Message);
            }
        }
        return null;
    }

    private SecureSocketOptions Security() => _options.UseTls switch
    {
        null => SecureSocketOptions.Auto,
        true => _options.Port == 465 ? SecureSocketOptions.SslOnConnect : SecureSocketOptions.StartTls,
        false => SecureSocketOptions.None,
    };

    private MimeMessage ToMessage(OutboxEmail email, MailboxAddress to)
    {
        var from = MailboxAddress.Parse(_options.From!);
        var message = new MimeMessage();
        message.From.Add(from);
        message.To.Add(to);
        message.Subject = email.Subject;
        message.Date = email.CreatedAt;
        // Stable across re-sends: the same outbox row is the same message.
        message.MessageId = string.Create(CultureInfo.InvariantCulture, $"postback-{email.Id}-{email.CreatedAt.ToUnixTimeMilliseconds()}@{from.Domain}");
        message.Body = new TextPart("plain") { Text = email.Body };
        return message;
    }

    // Marked the moment the server has taken it, so a failure later in the batch re-sends none
    // of the ones before.
    private Task MarkAsync(LeaseDispatch<EmailOutcome> dispatch, OutboxEmail email, string status, string? error) =>
        _store.CompleteAsync(dispatch.Owner, [new EmailOutcome(email.Id, status, error, null)], _time.GetUtcNow(), CancellationToken.None);

    private Task RescheduleAsync(LeaseDispatch<EmailOutcome> dispatch, OutboxEmail email, string error)
    {
        var now = _time.GetUtcNow();
        var policy = new RetryPolicy(TimeSpan.FromSeconds(_options.FirstRetrySeconds), TimeSpan.FromSeconds(_options.RetryCapSeconds), null);
        var next = now + RetrySchedule.Backoff(policy, email.Attempts + 1, Random.Shared.NextDouble());
        return _store.CompleteAsync(dispatch.Owner, [new EmailOutcome(email.Id, EmailStatus.Pending, error, next)], now, CancellationToken.None);
    }
}
