using System.Globalization;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MimeKit;
using Postback.Deliveries;
using Postback.Storage;

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
        services.AddOptions<SmtpOptions>().Bind(configuration.GetSection(SmtpOptions.Section));
        services.AddSingleton<EmailSignal>();
        services.AddHostedService<EmailSender>();
        return services;
    }
}

public sealed class EmailSender(
    IServiceScopeFactory scopes,
    EmailSignal signal,
    IOptions<SmtpOptions> options,
    TimeProvider time,
    ILogger<EmailSender> log) : BackgroundService
{
    private const int MaxError = 990;
    private readonly SmtpOptions _options = options.Value;
    private readonly string _owner = $"m:{Environment.MachineName[..Math.Min(Environment.MachineName.Length, 20)]}:{Environment.ProcessId}:{Guid.NewGuid():N}";

    protected override async Task ExecuteAsync(CancellationToken stopping)
    {
        if (!_options.Enabled)
        {
            return;
        }
        if (string.IsNullOrWhiteSpace(_options.Host) || string.IsNullOrWhiteSpace(_options.From))
        {
            log.LogWarning("Postback:Smtp:Host or Postback:Smtp:From is not set: alert e-mails are kept in the outbox and sent once SMTP is configured");
            return;
        }
        await Task.Yield();
        await signal.RunAsync(TimeSpan.FromMilliseconds(_options.PollMilliseconds), SendDueAsync, log, "Sending the e-mail outbox", stopping);
    }

    /// Claims and sends what is due; returns how many messages were taken from the outbox.
    private async Task<int> SendDueAsync(CancellationToken stopping)
    {
        var now = time.GetUtcNow();
        var until = now + TimeSpan.FromSeconds(_options.LeaseSeconds);
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var due = await db.EmailOutbox.AsNoTracking()
            .Where(m => m.Status == EmailStatus.Pending && m.DueAt <= now && (m.LeaseUntil == null || m.LeaseUntil < now))
            .OrderBy(m => m.DueAt)
            .Select(m => m.Id)
            .Take(_options.ClaimBatch)
            .ToListAsync(stopping);
        var claimed = new List<OutboxEmail>();
        foreach (var id in due)
        {
            var won = await db.EmailOutbox
                .Where(m => m.Id == id && m.Status == EmailStatus.Pending && m.DueAt <= now && (m.LeaseUntil == null || m.LeaseUntil < now))
                .ExecuteUpdateAsync(s => s.SetProperty(m => m.LeaseOwner, _owner).SetProperty(m => m.LeaseUntil, until), CancellationToken.None);
            if (won == 1)
            {
                claimed.Add(await db.EmailOutbox.AsNoTracking().FirstAsync(m => m.Id == id, CancellationToken.None));
            }
        }
        if (claimed.Count == 0)
        {
            return 0;
        }

        // From here on the messages are ours: each one ends sent, rejected or due again.
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
                if (!await RenewLeaseAsync(db, email.Id, _owner, time.GetUtcNow(), TimeSpan.FromSeconds(_options.LeaseSeconds)))
                {
                    log.LogWarning("Alert e-mail {EmailId} was taken over by another sender while this batch was being sent; it is left to that one", email.Id);
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
                    log.LogWarning("Alert e-mail {EmailId} has a recipient that cannot be parsed; it is not sent", email.Id);
                    await MarkAsync(db, email, EmailStatus.Rejected, $"the recipient address cannot be used: {e.Message}");
                    pending.Dequeue();
                    continue;
                }
                try
                {
                    await client.SendAsync(ToMessage(email, to), ct);
                    await MarkAsync(db, email, EmailStatus.Sent, null);
                    pending.Dequeue();
                }
                catch (SmtpCommandException e) when (e.ErrorCode == SmtpErrorCode.RecipientNotAccepted && (int)e.StatusCode >= 500)
                {
                    log.LogWarning("The SMTP server refused alert recipient {Recipient} for good: {Status}", email.Recipient, (int)e.StatusCode);
                    await MarkAsync(db, email, EmailStatus.Rejected, $"the SMTP server refused the recipient: {(int)e.StatusCode} {e.Message}");
                    pending.Dequeue();
                }
                catch (SmtpCommandException e)
                {
                    // The server is up but would not take this one now (4xx, or a 5xx about the
                    // message itself): try it again later, and go on with the others.
                    await RescheduleAsync(db, email, $"the SMTP server answered {(int)e.StatusCode}: {e.Message}");
                    pending.Dequeue();
                }
            }
            await client.DisconnectAsync(quit: true, ct);
        }
        catch (Exception e)
        {
            // Server down, TLS or login refused, connection lost, timeout: whatever it was, the
            // messages not yet accepted stay in the outbox and come due again.
            log.LogWarning("Could not send {Count} alert e-mail(s) through {Server}: {Error}; they stay in the outbox", pending.Count, _options.ToString(), e.Message);
            foreach (var email in pending)
            {
                await RescheduleAsync(db, email, "could not send through the SMTP server: " + e.Message);
            }
        }
        return claimed.Count;
    }

    private SecureSocketOptions Security() => _options.UseTls switch
    {
        null => SecureSocketOptions.Auto,
        true => _options.Port == 465 ? SecureSocketOptions.SslOnConnect : SecureSocketOptions.StartTls,
        false => SecureSocketOptions.None,
    };

    /// Extends the lease on one claimed message, in one conditional statement, only while it is
    /// still this owner's and has not run out; false means the message is no longer ours.
    public static async Task<bool> RenewLeaseAsync(PostbackDb db, long id, string owner, DateTimeOffset now, TimeSpan lease)
    {
        var until = now + lease;
        var renewed = await db.EmailOutbox
            .Where(m => m.Id == id && m.Status == EmailStatus.Pending && m.LeaseOwner == owner && m.LeaseUntil > now)
            .ExecuteUpdateAsync(s => s.SetProperty(m => m.LeaseUntil, until), CancellationToken.None);
        return renewed == 1;
    }

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

    private async Task MarkAsync(PostbackDb db, OutboxEmail email, string status, string? error)
    {
        var now = time.GetUtcNow();
        // The server's reply can be any length: the column holds 1000 characters.
        error = error is null ? null : Confirmations.ConfirmationProtocol.Clip(error, MaxError);
        await db.EmailOutbox
            .Where(m => m.Id == email.Id && m.LeaseOwner == _owner)
            .ExecuteUpdateAsync(s => s
                .SetProperty(m => m.Status, status)
                .SetProperty(m => m.Attempts, m => m.Attempts + 1)
                .SetProperty(m => m.SentAt, status == EmailStatus.Sent ? (DateTimeOffset?)now : null)
                .SetProperty(m => m.LastError, error)
                .SetProperty(m => m.LeaseOwner, (string?)null)
                .SetProperty(m => m.LeaseUntil, (DateTimeOffset?)null), CancellationToken.None);
    }

    private async Task RescheduleAsync(PostbackDb db, OutboxEmail email, string error)
    {
        var now = time.GetUtcNow();
        var policy = new RetryPolicy(TimeSpan.FromSeconds(_options.FirstRetrySeconds), TimeSpan.FromSeconds(_options.RetryCapSeconds), null);
        var next = now + RetrySchedule.Backoff(policy, email.Attempts + 1, Random.Shared.NextDouble());
        error = Confirmations.ConfirmationProtocol.Clip(error, MaxError);
        await db.EmailOutbox
            .Where(m => m.Id == email.Id && m.LeaseOwner == _owner)
            .ExecuteUpdateAsync(s => s
                .SetProperty(m => m.Attempts, m => m.Attempts + 1)
                .SetProperty(m => m.DueAt, next)
                .SetProperty(m => m.LastError, error)
                .SetProperty(m => m.LeaseOwner, (string?)null)
                .SetProperty(m => m.LeaseUntil, (DateTimeOffset?)null), CancellationToken.None);
    }
}
