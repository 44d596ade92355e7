using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.Infrastructure;
using Postback.Notifications;
using Postback.Observability;
using Postback.Organizations;
using Postback.Outbound;
using Postback.Storage;

namespace Postback.Confirmations;

/// Sends due confirmations on the lease-queue engine (Infrastructure/LeaseQueue.cs). A
/// confirmation is claimed under a lease, so two hub processes never send the same one at once,
/// sent through the OutboundSender (SSRF guard, timeout), and its outcome is written at once in
/// one transaction with its attempt, its history entry and, when it failed for good, its alert
/// e-mails. A worker that dies mid-send leaves the lease to expire, and the confirmation is sent
/// again: at least once.
public sealed class ConfirmationWorker : BackgroundService, ILeaseWork<ClaimedConfirmation, ConfirmationOutcome>
{
    private readonly IServiceScopeFactory _scopes;
    private readonly OutboundSender _sender;
    private readonly IConfirmationStore _store;
    private readonly ConfirmationSignal _signal;
    private readonly EmailSignal _emailSignal;
    private readonly ConfirmationOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<ConfirmationWorker> _log;
    private readonly LeaseQueue<ClaimedConfirmation, ConfirmationOutcome> _queue;

    public ConfirmationWorker(
        IServiceScopeFactory scopes, OutboundSender sender, IConfirmationStore store, ConfirmationSignal signal, EmailSignal emailSignal,
        IOptions<ConfirmationOptions> options, TimeProvider time, ILogger<ConfirmationWorker> log)
    {
        (_scopes, _sender, _store, _signal, _emailSignal, _options, _time, _log) = (scopes, sender, store, signal, emailSignal, options.Value, time, log);
        _queue = new(new LeaseQueueSettings
        {
            Work = "Claiming due order confirmations",
            OwnerPrefix = "c:",
            MaxInFlight = _options.MaxInFlight,
            ClaimBatch = _options.MaxInFlight,
            Lease = TimeSpan.FromSeconds(_options.LeaseSeconds),
            Poll = TimeSpan.FromMilliseconds(_options.PollMilliseconds),
            // Sends in flight get a moment to be recorded; any left keep their lease and come back.
            Drain = TimeSpan.FromSeconds(5),
        }, store, this, signal, time, log);
    }

    protected override Task ExecuteAsync(CancellationToken stopping) =>
        _options.Enabled ? _queue.RunAsync(stopping) : Task.CompletedTask;

    public async Task DispatchAsync(IReadOnlyList<ClaimedConfirmation> claimed, LeaseDispatch<ConfirmationOutcome> dispatch, CancellationToken ct)
    {
        foreach (var c in claimed)
        {
            // The send ignores the stop: what it started is recorded, or its lease runs out.
            await dispatch.StartAsync(c.Id, _ => Task.Run(() => SendAsync(c, dispatch.Owner)));
        }
    }

    private async Task<ConfirmationOutcome?> SendAsync(ClaimedConfirmation claimed, string owner)
    {
        OrderConfirmation confirmation;
        ConfirmationSettings? settings;
        Organizations.Organization organization;
        await using (var scope = _scopes.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
            var found = await db.Confirmations.AsNoTracking().FirstOrDefaultAsync(c => c.Id == claimed.Id);
            if (found is null || found.LeaseOwner != owner || found.Round != claimed.Round)
            {
                return null;
            }
            confirmation = found;
            settings = await db.ConfirmationSettings.AsNoTracking().FirstOrDefaultAsync(s => s.OrganizationId == confirmation.OrganizationId);
            organization = await db.Organizations.AsNoTracking().FirstAsync(o => o.Id == confirmation.OrganizationId);
        }
        var startedAt = _time.GetUtcNow();

        if (settings is not { Enabled: true, Url: { } url })
        {
            // Turned off after the order was confirmed: nothing is sent, and no one is
            // alerted about a webhook they switched off.
            var history = Finish(confirmation, ConfirmationStatus.Failed, null, "the order confirmation webhook is disabled", null, startedAt);
            await RecordAsync(new ConfirmationOutcome(claimed, confirmation, null, history, []), owner);
            return null;
        }

        var request = ConfirmationProtocol.BuildRequest(url, settings.AuthenticationToken, organization.CompanyId, confirmation.OrderId);
        using var span = PostbackTracing.StartConfirmation(confirmation.Id, confirmation.Attempts + 1);
        var result = await _sender.SendAsync(request, CancellationToken.None);
        var now = _time.GetUtcNow();
        var judgement = ConfirmationProtocol.Judge(result);
        var attempt = Attempt(confirmation, request, result, judgement, startedAt);
        confirmation.Attempts = attempt.Number;
        confirmation.LastAttemptAt = startedAt;
        confirmation.LastStatusCode = result.Response?.Status;

        HistoryEntry? entry = null;
        List<OutboxEmail> alerts = [];
        switch (judgement.Verdict)
        {
            case Verdict.Confirmed:
                entry = Finish(confirmation, ConfirmationStatus.Confirmed, judgement.Message, null, attempt, now);
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
                entry = Finish(confirmation, ConfirmationStatus.Failed, judgement.Message, error, attempt, now);
                alerts.AddRange(ConfirmationAlert.Emails(confirmation, settings.NotificationEmails, organization.Name, organization.CompanyId, url, now));
                break;
        }
        var label = confirmation.Status switch
        {
            ConfirmationStatus.Confirmed => "succeeded",
            ConfirmationStatus.Pending => "retrying",
            _ => "failed",
        };
        PostbackTracing.Finish(span, label, result.Response?.Status);
        if (await RecordAsync(new ConfirmationOutcome(claimed, confirmation, attempt, entry, alerts), owner))
        {
            PostbackMetrics.ConfirmationRecorded(label);
            if (confirmation.Status == ConfirmationStatus.Failed)
            {
                _log.LogInformation("Order confirmation {ConfirmationId} failed after {Attempts} attempt(s): {Error}; alert e-mails queued",
                    confirmation.Id, confirmation.Attempts, confirmation.Error);
            }
            if (alerts.Count > 0)
            {
                _emailSignal.Notify();
            }
        }
        if (confirmation.Status == ConfirmationStatus.Pending)
        {
            _signal.Notify();
        }
        return null;
    }

    private async Task<bool> RecordAsync(ConfirmationOutcome outcome, string owner)
    {
        if ((await _store.CompleteAsync(owner, [outcome], _time.GetUtcNow(), CancellationToken.None)).Count == 1)
        {
            return true;
        }
        // The lease was lost (it ran out and an operator reconfirmed, or another worker took
        // it): that worker's outcome is the one that counts. Nothing of ours was written.
        _log.LogWarning("Order confirmation {ConfirmationId} was taken over while it was being sent; its outcome is dropped", outcome.Id);
        return false;
    }

    private static HistoryEntry Finish(
        OrderConfirmation confirmation, string status, string? message, string? error, ConfirmationAttempt? attempt, DateTimeOffset now)
    {
        confirmation.Status = status;
        confirmation.Message = message;
        confirmation.Error = error is null ? null : Text.Clip(error, 990, "…");
        confirmation.CompletedAt = now;
        confirmation.LeaseOwner = null;
        confirmation.LeaseUntil = null;
        var what = status == ConfirmationStatus.Confirmed ? "Order confirmed" : "Order confirmation failed";
        var why = message ?? error;
        return new HistoryEntry
        {
            OrganizationId = confirmation.OrganizationId,
            CustomerId = confirmation.CustomerId,
            OrderId = confirmation.OrderId,
            Kind = "confirmation",
            Status = status,
            Message = Text.Clip(
                attempt is null ? $"{what}: {why}" : $"{what} ({attempt.RequestMethod} {attempt.RequestUrl}){(why is null ? "" : ": " + why)}", 990, "…"),
            CreatedAt = now,
        };
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
        attempt.Error = judgement.Error is { } e ? Text.Clip(e, 990, "…") : null;
        attempt.Succeeded = judgement.Verdict == Verdict.Confirmed;
        return attempt;
    }
}
