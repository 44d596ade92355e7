using Postback.Observability;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.Notifications;
using Postback.Outbound;
using Postback.Storage;

namespace Postback.Confirmations;

/// Sends due confirmations. A confirmation is claimed under a lease (one conditional UPDATE per
/// row, so two hub processes never send the same one at once), sent through the OutboundSender
/// (SSRF guard, timeout), and its outcome is written in one transaction with its attempt, its
/// history entry and, when it failed for good, its alert e-mails. A worker that dies mid-send
/// leaves the lease to expire, and the confirmation is sent again: at least once.
public sealed class ConfirmationWorker(
    IServiceScopeFactory scopes,
    OutboundSender sender,
    ConfirmationSignal signal,
    EmailSignal emailSignal,
    IOptions<ConfirmationOptions> options,
    TimeProvider time,
    ILogger<ConfirmationWorker> log) : BackgroundService
{
    private readonly ConfirmationOptions _options = options.Value;
    private readonly string _owner = $"c:{Environment.MachineName[..Math.Min(Environment.MachineName.Length, 20)]}:{Environment.ProcessId}:{Guid.NewGuid():N}";
    private readonly SemaphoreSlim _slots = new(options.Value.MaxInFlight, options.Value.MaxInFlight);

    private sealed record Claimed(long Id, int Round, int Attempts);

    protected override async Task ExecuteAsync(CancellationToken stopping)
    {
        if (!_options.Enabled)
        {
            return;
        }
        await Task.Yield();
        await signal.RunAsync(TimeSpan.FromMilliseconds(_options.PollMilliseconds), async ct =>
        {
            // Claim only when a slot is free.
            await _slots.WaitAsync(ct);
            _slots.Release();
            return await ClaimAndSendAsync(ct);
        }, log, "Claiming due order confirmations", stopping);
        // Sends in flight get a moment to be recorded; any left keep their lease and come back.
        for (var i = 0; i < 100 && _slots.CurrentCount < _options.MaxInFlight; i++)
        {
            await Task.Delay(50, CancellationToken.None);
        }
    }

    private async Task<int> ClaimAndSendAsync(CancellationToken stopping)
    {
        var now = time.GetUtcNow();
        var until = now + TimeSpan.FromSeconds(_options.LeaseSeconds);
        var claimed = new List<Claimed>();
        await using (var scope = scopes.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
            var due = await db.Confirmations.AsNoTracking()
                .Where(c => c.Status == ConfirmationStatus.Pending && c.DueAt <= now && (c.LeaseUntil == null || c.LeaseUntil < now))
                .OrderBy(c => c.DueAt)
                .Select(c => new Claimed(c.Id, c.Round, c.Attempts))
                .Take(_slots.CurrentCount)
                .ToListAsync(stopping);
            foreach (var c in due)
            {
                // Whoever changes the row first owns it; the others see 0 rows changed.
                var won = await db.Confirmations
                    .Where(x => x.Id == c.Id && x.Round == c.Round && x.Status == ConfirmationStatus.Pending && x.DueAt <= now
                        && (x.LeaseUntil == null || x.LeaseUntil < now))
                    .ExecuteUpdateAsync(s => s.SetProperty(x => x.LeaseOwner, _owner).SetProperty(x => x.LeaseUntil, until), CancellationToken.None);
                if (won == 1)
                {
                    claimed.Add(c);
                }
            }
        }
        foreach (var c in claimed)
        {
            await _slots.WaitAsync(CancellationToken.None);
            _ = Task.Run(() => SendAsync(c));
        }
        return claimed.Count;
    }

    private async Task SendAsync(Claimed claimed)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
            var confirmation = await db.Confirmations.FirstOrDefaultAsync(c => c.Id == claimed.Id);
            if (confirmation is null || confirmation.LeaseOwner != _owner || confirmation.Round != claimed.Round)
            {
                return;
            }
            var settings = await db.ConfirmationSettings.AsNoTracking().FirstOrDefaultAsync(s => s.OrganizationId == confirmation.OrganizationId);
            var organization = await db.Organizations.AsNoTracking().FirstAsync(o => o.Id == confirmation.OrganizationId);
            var startedAt = time.GetUtcNow();

            if (settings is not { Enabled: true, Url: { } url })
            {
                // Turned off after the order was confirmed: nothing is sent, and no one is
                // alerted about a webhook they switched off.
                Finish(db, confirmation, ConfirmationStatus.Failed, null, "the order confirmation webhook is disabled", null, startedAt);
                await SaveAsync(db, confirmation);
                return;
            }

            var request = ConfirmationProtocol.BuildRequest(url, settings.AuthenticationToken, organization.CompanyId, confirmation.OrderId);
            using var span = PostbackTracing.StartConfirmation(confirmation.Id, confirmation.Attempts + 1);
            var result = await sender.SendAsync(request, CancellationToken.None);
            var now = time.GetUtcNow();
            var judgement = ConfirmationProtocol.Judge(result);
            var attempt = Attempt(confirmation, request, result, judgement, startedAt);
            db.ConfirmationAttempts.Add(attempt);
            confirmation.Attempts = attempt.Number;
            confirmation.LastAttemptAt = startedAt;
            confirmation.LastStatusCode = result.Response?.Status;

            switch (judgement.Verdict)
            {
                case Verdict.Confirmed:
                    Finish(db, confirmation, ConfirmationStatus.Confirmed, judgement.Message, null, attempt, now);
                    break;
                case Verdict.Retry when ConfirmationProtocol.NextAttempt(_options, attempt.Number, now, result.Response?.RetryAfter, Random.Shared.NextDouble()) is { } next:
                    confirmation.Message = judgement.Message ?? confirmation.Message;
                    confirmation.Error = judgement.Error;
                    confirmation.DueAt = next;
                    confirmation.LeaseOwner = null;
                    confirmation.LeaseUntil = null;
                    break;
                default:
                    var error = judgement.Verdict == Verdict.Retry
                        ? $"{judgement.Error}; gave up after {attempt.Number} attempts"
                        : judgement.Error;
                    Finish(db, confirmation, ConfirmationStatus.Failed, judgement.Message, error, attempt, now);
                    foreach (var email in ConfirmationAlert.Emails(confirmation, settings.NotificationEmails, organization.Name, organization.CompanyId, url, now))
                    {
                        db.EmailOutbox.Add(email);
                    }
                    break;
            }
            var label = confirmation.Status switch
            {
                ConfirmationStatus.Confirmed => "succeeded",
                ConfirmationStatus.Pending => "retrying",
                _ => "failed",
            };
            PostbackTracing.Finish(span, label, result.Response?.Status);
            if (await SaveAsync(db, confirmation))
            {
                PostbackMetrics.ConfirmationRecorded(label);
                if (confirmation.Status == ConfirmationStatus.Failed)
                {
                    log.LogInformation("Order confirmation {ConfirmationId} failed after {Attempts} attempt(s): {Error}; alert e-mails queued",
                        confirmation.Id, confirmation.Attempts, confirmation.Error);
                    emailSignal.Notify();
                }
            }
            if (confirmation.Status == ConfirmationStatus.Pending)
            {
                signal.Notify();
            }
        }
        catch (Exception e)
        {
            // The lease runs out and the confirmation is tried again.
            log.LogError(e, "Sending order confirmation {ConfirmationId} failed unexpectedly", claimed.Id);
        }
        finally
        {
            _slots.Release();
        }
    }

    private static void Finish(
        PostbackDb db, OrderConfirmation confirmation, string status, string? message, string? error, ConfirmationAttempt? attempt, DateTimeOffset now)
    {
        confirmation.Status = status;
        confirmation.Message = message;
        confirmation.Error = error is null ? null : ConfirmationProtocol.Clip(error, 990);
        confirmation.CompletedAt = now;
        confirmation.LeaseOwner = null;
        confirmation.LeaseUntil = null;
        var what = status == ConfirmationStatus.Confirmed ? "Order confirmed" : "Order confirmation failed";
        var why = message ?? error;
        db.History.Add(new HistoryEntry
        {
            OrganizationId = confirmation.OrganizationId,
            CustomerId = confirmation.CustomerId,
            OrderId = confirmation.OrderId,
            Kind = "confirmation",
            Status = status,
            Message = ConfirmationProtocol.Clip(
                attempt is null ? $"{what}: {why}" : $"{what} ({attempt.RequestMethod} {attempt.RequestUrl}){(why is null ? "" : ": " + why)}", 990),
            CreatedAt = now,
        });
    }

    private async Task<bool> SaveAsync(PostbackDb db, OrderConfirmation confirmation)
    {
        try
        {
            await db.SaveChangesAsync();
            return true;
        }
        catch (DbUpdateConcurrencyException)
        {
            // The lease was lost (it ran out and an operator reconfirmed, or another worker took
            // it): that worker's outcome is the one that counts. Nothing of ours was written.
            log.LogWarning("Order confirmation {ConfirmationId} was taken over while it was being sent; its outcome is dropped", confirmation.Id);
            return false;
        }
    }

    private static ConfirmationAttempt Attempt(
        OrderConfirmation confirmation, RenderedRequest request, OutboundResult result, Judgement judgement, DateTimeOffset startedAt)
    {
        var attempt = new ConfirmationAttempt
        {
            ConfirmationId = confirmation.Id,
            OrganizationId = confirmation.OrganizationId,
            Round = confirmation.Round,
            Number = confirmation.Attempts + 1,
        };
        attempt.Record(SecretMasking.MaskRequest(request), result, startedAt);
        // The judgement, not the transport alone, says whether it worked and what went wrong.
        attempt.Error = judgement.Error is { } e ? ConfirmationProtocol.Clip(e, 990) : null;
        attempt.Succeeded = judgement.Verdict == Verdict.Confirmed;
        return attempt;
    }
}
