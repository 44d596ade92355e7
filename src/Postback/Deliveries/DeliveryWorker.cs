using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Postback.Catalog;
using Postback.ExportProfiles;
using Postback.Infrastructure;
using Postback.Observability;
using Postback.Orders;
using Postback.Outbound;
using Postback.Storage;

namespace Postback.Deliveries;

/// Sends due deliveries on the lease-queue engine (Infrastructure/LeaseQueue.cs): it claims
/// batches of due deliveries (skipping endpoints on hold), this class renders each and starts its
/// send, and finished sends are written back in batches.
public sealed class DeliveryWorker : BackgroundService, ILeaseWork<ClaimedDelivery, DeliveryOutcome>
{
    public const string IdHeader = "X-Postback-Delivery-Id";
    public const string WebhookIdHeader = WebhookSignature.IdHeader;

    private readonly IServiceScopeFactory _scopes;
    private readonly OutboundSender _sender;
    private readonly TimeProvider _time;
    private readonly ILogger<DeliveryWorker> _log;
    private readonly DeliveryOptions _options;
    private readonly EndpointHealth _health;
    private readonly LeaseQueue<ClaimedDelivery, DeliveryOutcome> _queue;
    private readonly IDeliveryStore _store;
    private readonly DeliverySignal _signal;
    private readonly TimeSpan _firstRetry;

    public DeliveryWorker(
        IServiceScopeFactory scopes, OutboundSender sender, IDeliveryStore store, DeliverySignal signal,
        IOptions<PostbackOptions> options, EndpointHealth health, TimeProvider time, ILogger<DeliveryWorker> log)
    {
        _scopes = scopes;
        _sender = sender;
        _time = time;
        _log = log;
        _options = options.Value.Delivery;
        _health = health;
        _store = store;
        _signal = signal;
        _firstRetry = TimeSpan.FromSeconds(_options.FirstRetrySeconds);
        _queue = new(new LeaseQueueSettings
        {
            Work = "Claiming due deliveries",
            MaxInFlight = _options.MaxInFlight,
            ClaimBatch = _options.ClaimBatch,
            Lease = TimeSpan.FromSeconds(_options.LeaseSeconds),
            Poll = TimeSpan.FromMilliseconds(_options.PollMilliseconds),
            Drain = TimeSpan.FromSeconds(_options.ShutdownSeconds),
            TakesHandOvers = true,
        }, new HealthAwareClaims(store, _health), this, signal, time, log);
        signal.Attach(_queue, _health, this);
    }

    public EndpointHealth Health => _health;

    protected override Task ExecuteAsync(CancellationToken stopping) =>
        _options.Enabled ? _queue.RunAsync(stopping) : Task.CompletedTask;

    /// The store as the engine sees it: a claim leaves out endpoints on hold right now.
    private sealed class HealthAwareClaims(IDeliveryStore store, EndpointHealth health) : ILeaseStore<ClaimedDelivery, DeliveryOutcome>
    {
        public Task<IReadOnlyList<ClaimedDelivery>> ClaimAsync(Lease lease, int limit, CancellationToken ct) =>
            store.ClaimAsync(lease, limit, health.Blocked(lease.Now), ct);

        public Task<IReadOnlySet<long>> CompleteAsync(string owner, IReadOnlyList<DeliveryOutcome> outcomes, DateTimeOffset now, CancellationToken ct) =>
            store.CompleteAsync(owner, outcomes, now, ct);

        public Task ReleaseAsync(string owner, IReadOnlyCollection<long> ids, CancellationToken ct) => store.ReleaseAsync(owner, ids, ct);
    }

    // The profiles are read here for claimed deliveries: one disabled, deleted or changed since
    // the event was routed is seen as it is now.
    public async Task DispatchAsync(IReadOnlyList<ClaimedDelivery> claimed, LeaseDispatch<DeliveryOutcome> dispatch, CancellationToken ct)
    {
        await using var scope = _scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var orderKeys = claimed.Select(c => c.OrderKey).Distinct().ToList();
        var orders = await db.Orders.AsNoTracking().Where(o => orderKeys.Contains(o.Id))
            .Select(o => new { o.Id, o.Data }).ToDictionaryAsync(o => o.Id, o => OrderJson.Deserialize(o.Data), ct);
        var profileIds = claimed.Select(c => c.ProfileId).Distinct().ToList();
        var profiles = await db.ExportProfiles.AsNoTracking().Where(p => profileIds.Contains(p.Id)).ToDictionaryAsync(p => p.Id, ct);
        var campaignNames = await CampaignNamesAsync(db, orders.Values, claimed, ct);
        await DispatchAsync(claimed, orders, profiles, campaignNames, dispatch, ct);
    }

    /// Deliveries an ingest in this process stored leased to this worker, with what it read for
    /// them (DeliverySignal.HandOver): they are sent with the profiles they were routed by a
    /// moment ago. A profile changed or disabled in that moment is seen from the next attempt
    /// on (a claimed delivery reads its profile as it is when dispatched).
    internal async Task DispatchAsync(
        IReadOnlyList<ClaimedDelivery> claimed, HandOverContext handed, LeaseDispatch<DeliveryOutcome> dispatch, CancellationToken ct)
    {
        var campaignNames = handed.CampaignNames;
        if (campaignNames is null)
        {
            await using var scope = _scopes.CreateAsyncScope();
            campaignNames = await CampaignNamesAsync(scope.ServiceProvider.GetRequiredService<PostbackDb>(), handed.Orders.Values, claimed, ct);
        }
        await DispatchAsync(claimed, handed.Orders, handed.Profiles, campaignNames, dispatch, ct);
    }

    private async Task DispatchAsync(
        IReadOnlyList<ClaimedDelivery> claimed, IReadOnlyDictionary<long, OrderData> orders, IReadOnlyDictionary<long, ExportProfile> profiles,
        IReadOnlyDictionary<(long, string), string> campaignNames, LeaseDispatch<DeliveryOutcome> dispatch, CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        foreach (var claimedDelivery in claimed)
        {
            var delivery = claimedDelivery;
            // From here on each delivery is either written as an outcome, sent, or released.
            if (!profiles.TryGetValue(delivery.ProfileId, out var profile) || !profile.Enabled)
            {
                await dispatch.FinishAsync(Finish(delivery, DeliveryStatus.Cancelled,
                    profile is null ? "the export profile was deleted" : "the export profile is disabled"));
                continue;
            }
            if (!orders.TryGetValue(delivery.OrderKey, out var order))
            {
                await dispatch.FinishAsync(Finish(delivery, DeliveryStatus.Cancelled, "the order no longer exists"));
                continue;
            }
            if (profile.Coalesce && delivery.Attempts == 0)
            {
                string? latest;
                latest = await _store.CoalesceAsync(dispatch.Owner, delivery, now, ct);
                if (latest is not null)
                {
                    delivery = delivery with { CustomerType = latest };
                }
            }
            RenderedRequest request;
            try
            {
                var campaignName = order.CampaignId is { } c ? campaignNames.GetValueOrDefault((delivery.OrganizationId, c)) : null;
                request = RequestRenderer.Render(profile.PostbackUrl, profile.Mappings, order, new RenderContext(delivery.CustomerType, campaignName));
            }
            catch (UnsendableRequestException e)
            {
                await dispatch.FinishAsync(Finish(delivery, DeliveryStatus.Failed, "the request can never be sent: " + e.Message));
                continue;
            }
            catch (ArgumentException e)
            {
                await dispatch.FinishAsync(Finish(delivery, DeliveryStatus.Failed, "the profile cannot be rendered: " + e.Message));
                continue;
            }
            var id = delivery.Id.ToString(CultureInfo.InvariantCulture);
            request = request with { Headers = [.. request.Headers, new(WebhookIdHeader, "dlv_" + id), new(IdHeader, id)] };
            if (profile.SigningSecret is { } secret)
            {
                request = WebhookSignature.Add(request, secret, "dlv_" + id, _time.GetUtcNow());
            }

            var admitted = _health.Admit(delivery.Endpoint, now);
            if (admitted == EndpointHealth.Decision.Wait)
            {
                dispatch.Release(delivery.Id);
                continue;
            }
            await dispatch.StartAsync(delivery.Id, abort => SendAsync(delivery, profile, request, admitted, abort));
        }
    }

    private static async Task<Dictionary<(long, string), string>> CampaignNamesAsync(
        PostbackDb db, IEnumerable<OrderData> orders, IReadOnlyList<ClaimedDelivery> claimed, CancellationToken ct)
    {
        var campaignIds = orders.Select(o => o.CampaignId).Where(c => c is not null).Distinct().ToList();
        if (campaignIds.Count == 0)
        {
            return [];
        }
        var organizationIds = claimed.Select(c => c.OrganizationId).Distinct().ToList();
        var rows = await db.Campaigns.AsNoTracking()
            .Where(c => organizationIds.Contains(c.OrganizationId) && campaignIds.Contains(c.CampaignId))
            .Select(c => new { c.OrganizationId, c.CampaignId, c.Name }).ToListAsync(ct);
        return rows.ToDictionary(r => (r.OrganizationId, r.CampaignId), r => r.Name);
    }

    private async Task<DeliveryOutcome?> SendAsync(
        ClaimedDelivery delivery, ExportProfile profile, RenderedRequest request, EndpointHealth.Decision admitted, CancellationToken abort)
    {
        var reported = false;
        using var span = PostbackTracing.StartDeliveryAttempt(delivery.Id, delivery.ProfileId, delivery.Attempts + 1, delivery.TraceParent);
        try
        {
            var startedAt = _time.GetUtcNow();
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            OutboundResult result;
            try
            {
                result = await _sender.SendAsync(request, abort);
            }
            catch (OperationCanceledException) when (abort.IsCancellationRequested)
            {
                // Stopping: the engine releases the delivery.
                _health.Abandon(delivery.Endpoint, admitted);
                throw;
            }
            PostbackMetrics.AttemptFinished(
                result.Succeeded ? "succeeded" : result.Response is null ? "error" : "rejected",
                System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
            var now = _time.GetUtcNow();
            if (result.NeverSent)
            {
                // Not the receiver's doing: its circuit neither opens nor closes on it.
                _health.Abandon(delivery.Endpoint, admitted);
            }
            else
            {
                LogTransition(delivery.Endpoint, _health.Report(delivery.Endpoint, admitted, result.Succeeded, now));
            }
            reported = true;
            var outcome = Outcome(delivery, profile, request, result, startedAt, now, _firstRetry, Random.Shared.NextDouble());
            PostbackTracing.Finish(span, StatusLabel(outcome), result.Response?.Status);
            return outcome;
        }
        catch (Exception e) when (!abort.IsCancellationRequested || e is not OperationCanceledException)
        {
            // Recorded as a failed attempt, so it is retried on the schedule like any failure
            // (not re-sent, silently, each time its lease runs out).
            _log.LogError(e, "Sending delivery {DeliveryId} failed unexpectedly", delivery.Id);
            var now = _time.GetUtcNow();
            if (!reported)
            {
                // Our own failure, not the receiver's.
                _health.Abandon(delivery.Endpoint, admitted);
            }
            var failed = new OutboundResult(null, 0, "internal error while sending: " + e.Message);
            return Outcome(delivery, profile, request, failed, now, now, _firstRetry, Random.Shared.NextDouble());
        }
    }

    private void LogTransition(string endpoint, EndpointHealth.Transition transition)
    {
        switch (transition)
        {
            case EndpointHealth.Transition.Held:
                var (failures, until) = _health.Snapshot(endpoint);
                _log.LogInformation("Receiver {Endpoint} on hold until {HeldUntil:O} after {Failures} failures in a row; one request at a time probes it",
                    endpoint, until, failures);
                break;
            case EndpointHealth.Transition.Recovered:
                _log.LogInformation("Receiver {Endpoint} answered again; no longer on hold", endpoint);
                break;
        }
    }

    // The label of postback_deliveries_total for an outcome.
    private static string StatusLabel(DeliveryOutcome o) => o.Status == DeliveryStatus.Pending ? "retrying" : o.Status;

    /// The pure part of finishing an attempt: what gets stored and when the next try is due.
    public static DeliveryOutcome Outcome(
        ClaimedDelivery delivery, ExportProfile profile, RenderedRequest request, OutboundResult result,
        DateTimeOffset startedAt, DateTimeOffset now, TimeSpan firstRetry, double random)
    {
        var attempt = new DeliveryAttempt
        {
            DeliveryId = delivery.Id,
            OrganizationId = delivery.OrganizationId,
            Number = delivery.Attempts + 1,
        };
        attempt.Record(SecretMasking.MaskRequest(request), result, startedAt);
        if (result.Succeeded)
        {
            var captures = AnswerCapture.Read(profile.Captures, result.Response!);
            attempt.Captures = captures.Count == 0 ? null : AnswerCapture.ToJson(captures);
            return new DeliveryOutcome(delivery, DeliveryStatus.Succeeded, null, attempt, null, result.Response!.Status, captures);
        }
        if (result.NeverSent)
        {
            return new DeliveryOutcome(delivery, DeliveryStatus.Failed, null, attempt, "the request can never be sent: " + result.Error, null);
        }

        var error = result.Error ?? $"the receiver answered {result.Response!.Status}";
        var policy = new RetryPolicy(
            firstRetry,
            TimeSpan.FromMinutes(profile.RetryCapMinutes),
            profile.GiveUpAfterHours is { } hours ? TimeSpan.FromHours(hours) : null);
        var next = RetrySchedule.NextAttempt(policy, attempt.Number, now, delivery.FirstDueAt, result.Response?.RetryAfter, random);
        return next is null
            ? new DeliveryOutcome(delivery, DeliveryStatus.Failed, null, attempt, error + $"; gave up after {profile.GiveUpAfterHours} h", result.Response?.Status)
            : new DeliveryOutcome(delivery, DeliveryStatus.Pending, next, attempt, error, result.Response?.Status);
    }

    private static DeliveryOutcome Finish(ClaimedDelivery delivery, string status, string error) =>
        new(delivery, status, null, null, error, null);

    /// An outcome that keeps failing on its own is stored without the bodies it carried.
    public DeliveryOutcome Degrade(DeliveryOutcome outcome) =>
        outcome.Attempt is null ? outcome : outcome with { Attempt = WithoutBodies(outcome.Attempt) };

    /// Metrics and the give-up line, for what was recorded (an outcome whose lease another
    /// worker took over is that worker's to report).
    public void Recorded(IReadOnlyList<DeliveryOutcome> outcomes, IReadOnlySet<long> recorded)
    {
        var orderedFinished = false;
        foreach (var outcome in outcomes)
        {
            orderedFinished |= outcome.Delivery.Ordered && outcome.Status != DeliveryStatus.Pending;
            if (!recorded.Contains(outcome.Delivery.Id))
            {
                continue;
            }
            PostbackMetrics.DeliveryRecorded(StatusLabel(outcome));
            if (outcome is { Status: DeliveryStatus.Succeeded, Attempt: { } attempt })
            {
                var answeredAt = attempt.StartedAt + TimeSpan.FromMilliseconds(attempt.DurationMs);
                PostbackMetrics.DeliverySucceeded((answeredAt - outcome.Delivery.FirstDueAt).TotalSeconds);
            }
            else if (outcome.Status == DeliveryStatus.Failed)
            {
                _log.LogInformation("Delivery {DeliveryId} (profile {ProfileId}) failed for good after {Attempts} attempt(s): {Error}",
                    outcome.Delivery.Id, outcome.Delivery.ProfileId, outcome.Delivery.Attempts + (outcome.Attempt is null ? 0 : 1), outcome.Error);
            }
        }
        // The next delivery of an ordered profile for the same order is due the moment this one
        // finished: claim again now rather than at the next poll (other processes poll).
        if (orderedFinished)
        {
            _signal.Notify();
        }
    }

    private static DeliveryAttempt WithoutBodies(DeliveryAttempt a) => new()
    {
        DeliveryId = a.DeliveryId, OrganizationId = a.OrganizationId, Number = a.Number, StartedAt = a.StartedAt, DurationMs = a.DurationMs,
        RequestMethod = a.RequestMethod, RequestUrl = a.RequestUrl, RequestHeaders = "[]", ResponseStatus = a.ResponseStatus,
        Error = "(request and response bodies could not be stored) " + a.Error, Succeeded = a.Succeeded,
    };
}
