using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Postback.ExportProfiles;
using Postback.Infrastructure;
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
    public const string WebhookIdHeader = "webhook-id";

    private readonly IServiceScopeFactory _scopes;
    private readonly OutboundSender _sender;
    private readonly TimeProvider _time;
    private readonly ILogger<DeliveryWorker> _log;
    private readonly DeliveryOptions _options;
    private readonly EndpointHealth _health;
    private readonly LeaseQueue<ClaimedDelivery, DeliveryOutcome> _queue;
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
        _firstRetry = TimeSpan.FromSeconds(_options.FirstRetrySeconds);
        _queue = new(new LeaseQueueSettings
        {
            Work = "Claiming due deliveries",
            MaxInFlight = _options.MaxInFlight,
            ClaimBatch = _options.ClaimBatch,
            Lease = TimeSpan.FromSeconds(_options.LeaseSeconds),
            Poll = TimeSpan.FromMilliseconds(_options.PollMilliseconds),
            Drain = TimeSpan.FromSeconds(_options.ShutdownSeconds),
        }, new HealthAwareClaims(store, _health), this, signal, time, log);
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

    public async Task DispatchAsync(IReadOnlyList<ClaimedDelivery> claimed, LeaseDispatch<DeliveryOutcome> dispatch, CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        await using var scope = _scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var orderKeys = claimed.Select(c => c.OrderKey).Distinct().ToList();
        var orders = await db.Orders.AsNoTracking().Where(o => orderKeys.Contains(o.Id))
            .Select(o => new { o.Id, o.Data }).ToDictionaryAsync(o => o.Id, o => OrderJson.Deserialize(o.Data), ct);
        var profileIds = claimed.Select(c => c.ProfileId).Distinct().ToList();
        var profiles = await db.ExportProfiles.AsNoTracking().Where(p => profileIds.Contains(p.Id)).ToDictionaryAsync(p => p.Id, ct);
        var campaignNames = await CampaignNamesAsync(db, orders.Values, claimed, ct);

        foreach (var delivery in claimed)
        {
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
        try
        {
            var startedAt = _time.GetUtcNow();
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
            var now = _time.GetUtcNow();
            if (result.NeverSent)
            {
                // Not the receiver's doing: its circuit neither opens nor closes on it.
                _health.Abandon(delivery.Endpoint, admitted);
            }
            else
            {
                _health.Report(delivery.Endpoint, admitted, result.Succeeded, now);
            }
            reported = true;
            return Outcome(delivery, profile, request, result, startedAt, now, _firstRetry, Random.Shared.NextDouble());
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
            return new DeliveryOutcome(delivery, DeliveryStatus.Succeeded, null, attempt, null, result.Response!.Status);
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

    private static DeliveryAttempt WithoutBodies(DeliveryAttempt a) => new()
    {
        DeliveryId = a.DeliveryId, OrganizationId = a.OrganizationId, Number = a.Number, StartedAt = a.StartedAt, DurationMs = a.DurationMs,
        RequestMethod = a.RequestMethod, RequestUrl = a.RequestUrl, RequestHeaders = "[]", ResponseStatus = a.ResponseStatus,
        Error = "(request and response bodies could not be stored) " + a.Error, Succeeded = a.Succeeded,
    };
}
