using System.Globalization;
using System.Threading.Channels;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Postback.ExportProfiles;
using Postback.Infrastructure;
using Postback.Observability;
using Postback.Orders;
using Postback.Outbound;
using Postback.Storage;

namespace Postback.Deliveries;

/// Sends due deliveries. One loop claims batches of due deliveries under a lease and starts a
/// send for each without waiting for the previous one; finished sends are written back in
/// batches by a second loop (one transaction per batch), so the database sees a few statements
/// per hundred deliveries rather than several per delivery.
public sealed class DeliveryWorker(
    IServiceScopeFactory scopes,
    OutboundSender sender,
    WriteGate gate,
    DeliverySignal signal,
    IOptions<PostbackOptions> options,
    EndpointHealth health,
    TimeProvider time,
    ILogger<DeliveryWorker> log) : BackgroundService
{
    public const string IdHeader = "X-Postback-Delivery-Id";
    public const string WebhookIdHeader = "webhook-id";

    private readonly DeliveryOptions _options = options.Value.Delivery;
    // Who holds a lease: this process, uniquely (at most 64 characters).
    private readonly string _owner = $"{Environment.MachineName[..Math.Min(Environment.MachineName.Length, 20)]}:{Environment.ProcessId}:{Guid.NewGuid():N}";
    private readonly EndpointHealth _health = health;
    private readonly SemaphoreSlim _slots = new(options.Value.Delivery.MaxInFlight, options.Value.Delivery.MaxInFlight);
    private readonly CancellationTokenSource _abort = new();
    private readonly Channel<DeliveryOutcome> _outcomes = Channel.CreateBounded<DeliveryOutcome>(
        new BoundedChannelOptions(options.Value.Delivery.MaxInFlight * 4) { SingleReader = true });

    // Deliveries this worker has claimed and not yet written back. A lease that runs out while
    // an answer or its write is slow lets the claim pick the delivery up again; this worker
    // then leaves it to the send already under way rather than sending it a second time.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<long, byte> _unfinished = new();

    private readonly TimeSpan _firstRetry = TimeSpan.FromSeconds(options.Value.Delivery.FirstRetrySeconds);

    public EndpointHealth Health => _health;

    protected override async Task ExecuteAsync(CancellationToken stopping)
    {
        if (!_options.Enabled)
        {
            return;
        }
        // Started off the host's start-up path: the first claim must not hold up the server.
        await Task.Yield();
        var writer = Task.Run(WriteLoopAsync, CancellationToken.None);
        await signal.RunAsync(TimeSpan.FromMilliseconds(_options.PollMilliseconds), async ct =>
        {
            // Claim only when a slot is free.
            await _slots.WaitAsync(ct);
            _slots.Release();
            return await ClaimAndDispatchAsync(ct);
        }, log, "Claiming due deliveries", stopping);
        await DrainAsync();
        _outcomes.Writer.Complete();
        await writer;
    }

    /// Graceful shutdown: sends in flight get a few seconds to finish and be recorded; the rest
    /// are cancelled and their deliveries released, due again for whichever worker comes next.
    private async Task DrainAsync()
    {
        var deadline = time.GetUtcNow() + TimeSpan.FromSeconds(_options.ShutdownSeconds);
        while (_slots.CurrentCount < _options.MaxInFlight && time.GetUtcNow() < deadline)
        {
            await Task.Delay(50);
        }
        await _abort.CancelAsync();
        var cancelledBy = time.GetUtcNow() + TimeSpan.FromSeconds(5);
        while (_slots.CurrentCount < _options.MaxInFlight && time.GetUtcNow() < cancelledBy)
        {
            await Task.Delay(20);
        }
    }

    // Once the claim has run the deliveries are ours until the lease ends, so nothing after it
    // is cancelled by a stop: they are sent (and recorded) or released, never left leased.
    private async Task<int> ClaimAndDispatchAsync(CancellationToken stopping)
    {
        stopping.ThrowIfCancellationRequested();
        var ct = CancellationToken.None;
        var now = time.GetUtcNow();
        var limit = Math.Min(_options.ClaimBatch, _slots.CurrentCount);
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var queue = DeliveryQueue.For(db);
        IReadOnlyList<ClaimedDelivery> claimed;
        using (await gate.EnterAsync(ct))
        {
            claimed = await queue.ClaimAsync(db, _owner, now, TimeSpan.FromSeconds(_options.LeaseSeconds), limit, _health.Blocked(now), ct);
        }
        if (claimed.Count == 0)
        {
            return 0;
        }
        var handed = new HashSet<long>();
        try
        {
            return await DispatchAsync(db, queue, claimed, now, handed, ct);
        }
        catch (Exception) when (handed.Count < claimed.Count)
        {
            // Reading the orders or profiles failed after the claim: give back what was not
            // handed on, so it is due again now rather than when the lease runs out.
            try
            {
                using (await gate.EnterAsync(ct))
                {
                    await queue.ReleaseAsync(db, _owner, claimed.Select(c => c.Id).Where(id => !handed.Contains(id)).ToList(), ct);
                }
            }
            catch (Exception e)
            {
                log.LogWarning(e, "Releasing {Count} claimed deliveries failed; their lease will run out", claimed.Count - handed.Count);
            }
            throw;
        }
    }

    private async Task<int> DispatchAsync(
        PostbackDb db, DeliveryQueue queue, IReadOnlyList<ClaimedDelivery> claimed, DateTimeOffset now, HashSet<long> handed, CancellationToken ct)
    {
        var orderKeys = claimed.Select(c => c.OrderKey).Distinct().ToList();
        var orders = await db.Orders.AsNoTracking().Where(o => orderKeys.Contains(o.Id))
            .Select(o => new { o.Id, o.Data }).ToDictionaryAsync(o => o.Id, o => OrderJson.Deserialize(o.Data), ct);
        var profileIds = claimed.Select(c => c.ProfileId).Distinct().ToList();
        var profiles = await db.ExportProfiles.AsNoTracking().Where(p => profileIds.Contains(p.Id)).ToDictionaryAsync(p => p.Id, ct);
        var campaignNames = await CampaignNamesAsync(db, orders.Values, claimed, ct);

        var released = new List<long>();
        foreach (var delivery in claimed)
        {
            // From here on each delivery is either written as an outcome, sent, or released.
            handed.Add(delivery.Id);
            if (_unfinished.ContainsKey(delivery.Id))
            {
                continue;
            }
            if (!profiles.TryGetValue(delivery.ProfileId, out var profile) || !profile.Enabled)
            {
                _unfinished[delivery.Id] = 0;
                await _outcomes.Writer.WriteAsync(Finish(delivery, DeliveryStatus.Cancelled,
                    profile is null ? "the export profile was deleted" : "the export profile is disabled"), CancellationToken.None);
                continue;
            }
            if (!orders.TryGetValue(delivery.OrderKey, out var order))
            {
                _unfinished[delivery.Id] = 0;
                await _outcomes.Writer.WriteAsync(Finish(delivery, DeliveryStatus.Cancelled, "the order no longer exists"), CancellationToken.None);
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
                _unfinished[delivery.Id] = 0;
                await _outcomes.Writer.WriteAsync(Finish(delivery, DeliveryStatus.Failed, "the request can never be sent: " + e.Message), CancellationToken.None);
                continue;
            }
            catch (ArgumentException e)
            {
                _unfinished[delivery.Id] = 0;
                await _outcomes.Writer.WriteAsync(Finish(delivery, DeliveryStatus.Failed, "the profile cannot be rendered: " + e.Message), CancellationToken.None);
                continue;
            }
            var id = delivery.Id.ToString(CultureInfo.InvariantCulture);
            request = request with { Headers = [.. request.Headers, new(WebhookIdHeader, "dlv_" + id), new(IdHeader, id)] };
            if (profile.SigningSecret is { } secret)
            {
                request = WebhookSignature.Add(request, secret, "dlv_" + id, time.GetUtcNow());
            }

            var admitted = _health.Admit(delivery.Endpoint, now);
            if (admitted == EndpointHealth.Decision.Wait)
            {
                released.Add(delivery.Id);
                handed.Remove(delivery.Id);
                continue;
            }
            await _slots.WaitAsync(CancellationToken.None);
            _unfinished[delivery.Id] = 0;
            _ = SendAsync(delivery, profile, request, admitted);
        }
        if (released.Count > 0)
        {
            using (await gate.EnterAsync(ct))
            {
                await queue.ReleaseAsync(db, _owner, released, ct);
            }
        }
        return claimed.Count - released.Count;
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

    private async Task SendAsync(ClaimedDelivery delivery, ExportProfile profile, RenderedRequest request, EndpointHealth.Decision admitted)
    {
        var reported = false;
        using var span = PostbackTracing.StartDeliveryAttempt(delivery.Id, delivery.ProfileId, delivery.Attempts + 1, delivery.TraceParent);
        try
        {
            var startedAt = time.GetUtcNow();
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            OutboundResult result;
            try
            {
                result = await sender.SendAsync(request, _abort.Token);
            }
            catch (OperationCanceledException)
            {
                _health.Abandon(delivery.Endpoint, admitted);
                reported = true;
                await _outcomes.Writer.WriteAsync(Release(delivery));
                return;
            }
            PostbackMetrics.AttemptFinished(
                result.Succeeded ? "succeeded" : result.Response is null ? "error" : "rejected",
                System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
            var now = time.GetUtcNow();
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
            await _outcomes.Writer.WriteAsync(outcome);
        }
        catch (Exception e)
        {
            // Recorded as a failed attempt, so it is retried on the schedule like any failure
            // (not re-sent, silently, each time its lease runs out).
            log.LogError(e, "Sending delivery {DeliveryId} failed unexpectedly", delivery.Id);
            var now = time.GetUtcNow();
            if (!reported)
            {
                // Our own failure, not the receiver's.
                _health.Abandon(delivery.Endpoint, admitted);
            }
            var failed = new OutboundResult(null, 0, "internal error while sending: " + e.Message);
            await _outcomes.Writer.WriteAsync(Outcome(delivery, profile, request, failed, now, now, _firstRetry, Random.Shared.NextDouble()));
        }
        finally
        {
            _slots.Release();
        }
    }

    private void LogTransition(string endpoint, EndpointHealth.Transition transition)
    {
        switch (transition)
        {
            case EndpointHealth.Transition.Held:
                var (failures, until) = _health.Snapshot(endpoint);
                log.LogInformation("Receiver {Endpoint} on hold until {HeldUntil:O} after {Failures} failures in a row; one request at a time probes it",
                    endpoint, until, failures);
                break;
            case EndpointHealth.Transition.Recovered:
                log.LogInformation("Receiver {Endpoint} answered again; no longer on hold", endpoint);
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

    private static DeliveryOutcome Release(ClaimedDelivery delivery) =>
        new(delivery, DeliveryStatus.Pending, null, null, null, null);

    private static bool IsRelease(DeliveryOutcome o) => o is { Attempt: null, Status: DeliveryStatus.Pending };

    private async Task WriteLoopAsync()
    {
        var reader = _outcomes.Reader;
        var batch = new List<DeliveryOutcome>(1000);
        while (await reader.WaitToReadAsync())
        {
            while (batch.Count < 1000 && reader.TryRead(out var outcome))
            {
                batch.Add(outcome);
            }
            // An outcome is never dropped while the database is unreachable: keep trying. If the
            // batch itself is the problem, write its outcomes one by one, and store one that
            // still fails without the bodies it carried.
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await WriteAsync(batch);
                    break;
                }
                catch (Exception e)
                {
                    log.LogError(e, "Recording {Count} delivery outcomes failed (try {Attempt}); retrying", batch.Count, attempt);
                    if (attempt >= 3 && batch.Count > 1)
                    {
                        foreach (var one in batch)
                        {
                            await WriteAloneAsync(one);
                        }
                        break;
                    }
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(5000, 100 * attempt)));
                }
            }
            batch.Clear();
        }
    }

    private async Task WriteAsync(IReadOnlyList<DeliveryOutcome> batch)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var queue = DeliveryQueue.For(db);
        using (await gate.EnterAsync(CancellationToken.None))
        {
            await queue.ReleaseAsync(db, _owner, batch.Where(IsRelease).Select(o => o.Delivery.Id).ToList(), CancellationToken.None);
            var recorded = await queue.CompleteAsync(db, _owner, batch.Where(o => !IsRelease(o)).ToList(), time.GetUtcNow(), CancellationToken.None);
            Report(batch, recorded);
        }
        foreach (var outcome in batch)
        {
            _unfinished.TryRemove(outcome.Delivery.Id, out _);
        }
    }

    // Metrics and the give-up line, for what was recorded (an outcome whose lease another
    // worker took over is that worker's to report).
    private void Report(IReadOnlyList<DeliveryOutcome> batch, IReadOnlySet<long> recorded)
    {
        foreach (var outcome in batch)
        {
            if (IsRelease(outcome) || !recorded.Contains(outcome.Delivery.Id))
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
                log.LogInformation("Delivery {DeliveryId} (profile {ProfileId}) failed for good after {Attempts} attempt(s): {Error}",
                    outcome.Delivery.Id, outcome.Delivery.ProfileId, outcome.Delivery.Attempts + (outcome.Attempt is null ? 0 : 1), outcome.Error);
            }
        }
    }

    private async Task WriteAloneAsync(DeliveryOutcome outcome)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await WriteAsync([attempt <= 5 || outcome.Attempt is null ? outcome : outcome with { Attempt = WithoutBodies(outcome.Attempt) }]);
                return;
            }
            catch (Exception e)
            {
                log.LogError(e, "Recording the outcome of delivery {DeliveryId} failed (try {Attempt})", outcome.Delivery.Id, attempt);
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(5000, 100 * attempt)));
            }
        }
    }

    private static DeliveryAttempt WithoutBodies(DeliveryAttempt a) => new()
    {
        DeliveryId = a.DeliveryId, OrganizationId = a.OrganizationId, Number = a.Number, StartedAt = a.StartedAt, DurationMs = a.DurationMs,
        RequestMethod = a.RequestMethod, RequestUrl = a.RequestUrl, RequestHeaders = "[]", ResponseStatus = a.ResponseStatus,
        Error = "(request and response bodies could not be stored) " + a.Error, Succeeded = a.Succeeded,
    };

    public override void Dispose()
    {
        _abort.Dispose();
        _slots.Dispose();
        base.Dispose();
    }
}
