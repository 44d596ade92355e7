using System.Security.Claims;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Postback.Infrastructure;
using Postback.Orders;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.Deliveries;

public sealed record DeliveryView(
    long Id, long ProfileId, long EventId, long OrderId, string? CustomerId, string CustomerType, string Status,
    DateTimeOffset DueAt, DateTimeOffset FirstDueAt, int Attempts, DateTimeOffset? LastAttemptAt, int? LastStatusCode, string? LastError,
    bool InFlight, DateTimeOffset CreatedAt, DateTimeOffset? CompletedAt, bool Ordered = false, long? WaitedFor = null, long? CoalescedInto = null)
{
    public static DeliveryView From(Delivery d, DateTimeOffset now) => new(
        d.Id, d.ProfileId, d.EventKey, d.OrderId, d.CustomerId, d.CustomerType, d.Status, d.DueAt, d.FirstDueAt, d.Attempts,
        d.LastAttemptAt, d.LastStatusCode, d.LastError, d.LeaseUntil > now, d.CreatedAt, d.CompletedAt, d.Ordered, d.AfterId, d.CoalescedIntoId);
}

public sealed record AttemptView(
    int Number, DateTimeOffset StartedAt, double DurationMs, bool Succeeded, JsonObject Request, JsonObject? Response, string? Error,
    IReadOnlyList<CaptureNote>? Captures);

public sealed record DeliveryDetail(DeliveryView Delivery, IReadOnlyList<AttemptView> Attempts);

public sealed record DeliveryPage(IReadOnlyList<DeliveryView> Items, long? NextBefore);

public sealed record BulkFilter(long? ProfileId, string? Status, DateTimeOffset? From, DateTimeOffset? To);

public sealed record BulkResult(int Count);

// DetailsExpiredAt: retention deleted what the line linked to (the delivery and its attempts,
// or the order); the line stays, with the final status, and no link.
public sealed record HistoryView(
    long Id, string Kind, long OrderId, long? DeliveryId, long? ProfileId, string? CustomerType, string? Status, string Message,
    string? Link, DateTimeOffset CreatedAt, DateTimeOffset? DetailsExpiredAt);

internal static class DeliveriesApi
{
    public const int MaxPage = 500;
    public const int MaxBulk = DeliveryOperations.MaxBulk;

    public static RouteGroupBuilder MapDeliveries(this RouteGroupBuilder api)
    {
        var group = api.MapGroup("/deliveries").WithTags("Deliveries");
        group.MapGet("/", List).WithSummary("Deliveries, newest first, filtered by profile, status, order and time; page with ?before=.");
        group.MapGet("/{id:long}", Get).WithSummary("One delivery with every attempt's request and response.");
        group.MapPost("/{id:long}/retry", Retry).WithSummary("Send a delivery again now, whatever its state (unless it is in flight).");
        group.MapPost("/{id:long}/cancel", Cancel).WithSummary("Cancel a pending delivery.");
        group.MapPost("/replay", Replay).WithSummary(
            "Make every delivery matching the filter due now (profile, status, created between from and to). Without a status: the failed and cancelled ones; succeeded ones only when status names them.");
        group.MapPost("/replay/preview", PreviewReplay).WithSummary("What /replay would do with this filter: how many deliveries it sends again, and how many of those already succeeded.");
        group.MapPost("/cancel", CancelMany).WithSummary("Cancel every pending delivery matching the filter.");
        api.MapGet("/customers/{customerId}/history", History).WithTags("Customers")
            .WithSummary("The customer's log: every fired export and order confirmation, linking to exactly what was sent.");
        return api;
    }

    private static async Task<Results<Ok<DeliveryPage>, ValidationProblem>> List(
        ClaimsPrincipal user, PostbackDb db, TimeProvider time, long? profileId, string? status, long? orderId,
        DateTimeOffset? from, DateTimeOffset? to, long? before, int? limit, CancellationToken ct)
    {
        if (status is not null && !DeliveryStatus.All.Contains(status))
        {
            return Problems.Validation("status", $"must be one of {string.Join(", ", DeliveryStatus.All)}");
        }
        var take = limit ?? 100;
        if (take is < 1 or > MaxPage)
        {
            return Problems.Validation("limit", $"must be from 1 to {MaxPage}");
        }
        return TypedResults.Ok(await DeliveryOperations.ListAsync(
            db, user.OrganizationId(), time.GetUtcNow(), profileId, status, orderId, from, to, before, take, ct));
    }

    private static async Task<Results<Ok<DeliveryDetail>, ProblemHttpResult>> Get(long id, ClaimsPrincipal user, PostbackDb db, TimeProvider time, CancellationToken ct)
    {
        var (delivery, attempts) = await DeliveryOperations.GetAsync(db, user.OrganizationId(), id, ct);
        if (delivery is null)
        {
            return NotFound(id);
        }
        return TypedResults.Ok(new DeliveryDetail(DeliveryView.From(delivery, time.GetUtcNow()), attempts.Select(ToView).ToList()));
    }

    private static AttemptView ToView(DeliveryAttempt a) =>
        new(a.Number, a.StartedAt, a.DurationMs, a.Succeeded, a.RequestJson(), a.ResponseJson(), a.Error,
            a.Captures is null ? null : AnswerCapture.FromJson(a.Captures));

    private static async Task<Results<Ok<DeliveryView>, ProblemHttpResult>> Retry(
        long id, ClaimsPrincipal user, PostbackDb db, TimeProvider time, DeliverySignal signal, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        var now = time.GetUtcNow();
        var (outcome, delivery) = await DeliveryOperations.RetryAsync(db, organizationId, id, now, signal, ct);
        if (delivery is null)
        {
            return NotFound(id);
        }
        if (outcome == RetryOutcome.LaterPending)
        {
            return Problems.Conflict("id", $"delivery {id} is ordered (its profile sends one order's deliveries in order) and a later delivery of the same order is still pending; retry it once that one has finished");
        }
        if (outcome != RetryOutcome.Done)
        {
            // 409: a worker claimed it at the same moment.
            return Problems.Conflict("id", $"delivery {id} is being sent right now; wait for its answer");
        }
        return TypedResults.Ok(DeliveryView.From(delivery, now));
    }

    private static async Task<Results<Ok<DeliveryView>, ProblemHttpResult>> Cancel(long id, ClaimsPrincipal user, PostbackDb db, TimeProvider time, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        var now = time.GetUtcNow();
        var (outcome, delivery) = await DeliveryOperations.CancelAsync(db, organizationId, id, now, ct);
        if (delivery is null)
        {
            return NotFound(id);
        }
        if (outcome != RetryOutcome.Done)
        {
            return Problems.Conflict("id", outcome == RetryOutcome.NotPending
                ? $"delivery {id} is {delivery.Status}; only a pending delivery can be cancelled"
                : $"delivery {id} is being sent right now; wait for its answer");
        }
        return TypedResults.Ok(DeliveryView.From(delivery, now));
    }

    private static async Task<Results<Ok<BulkResult>, ValidationProblem>> Replay(
        BulkFilter filter, ClaimsPrincipal user, PostbackDb db, TimeProvider time, DeliverySignal signal, CancellationToken ct)
    {
        if (Validate(filter) is { } problem)
        {
            return problem;
        }
        var organizationId = user.OrganizationId();
        var now = time.GetUtcNow();
        var count = await DeliveryOperations.ReplayAsync(db, organizationId, filter, now, signal, ct);
        return TypedResults.Ok(new BulkResult(count));
    }

    private static async Task<Results<Ok<DeliveryOperations.ReplayPreview>, ValidationProblem>> PreviewReplay(
        BulkFilter filter, ClaimsPrincipal user, PostbackDb db, TimeProvider time, CancellationToken ct)
    {
        if (Validate(filter) is { } problem)
        {
            return problem;
        }
        return TypedResults.Ok(await DeliveryOperations.PreviewReplayAsync(db, user.OrganizationId(), filter, time.GetUtcNow(), ct));
    }

    private static async Task<Results<Ok<BulkResult>, ValidationProblem>> CancelMany(
        BulkFilter filter, ClaimsPrincipal user, PostbackDb db, TimeProvider time, CancellationToken ct)
    {
        if (Validate(filter) is { } problem)
        {
            return problem;
        }
        if (filter.Status is not null and not DeliveryStatus.Pending)
        {
            return Problems.Validation("status", "only pending deliveries can be cancelled");
        }
        var organizationId = user.OrganizationId();
        var now = time.GetUtcNow();
        var count = await db.WriteInTurnAsync(() => Filter(db.Deliveries.Where(d => d.OrganizationId == organizationId && (d.LeaseUntil == null || d.LeaseUntil < now)),
                filter.ProfileId, DeliveryStatus.Pending, filter.From, filter.To)
            .ExecuteUpdateAsync(s => s
                .SetProperty(d => d.Status, DeliveryStatus.Cancelled)
                .SetProperty(d => d.CompletedAt, now)
                .SetProperty(d => d.LastError, "cancelled by an operator"), ct), ct);
        Infrastructure.PostbackMetrics.DeliveriesCancelled(count);
        return TypedResults.Ok(new BulkResult(count));
    }

    private static ValidationProblem? Validate(BulkFilter filter)
    {
        if (filter.Status is not null && !DeliveryStatus.All.Contains(filter.Status))
        {
            return Problems.Validation("status", $"must be one of {string.Join(", ", DeliveryStatus.All)}");
        }
        if (filter.From > filter.To)
        {
            return Problems.Validation("from", "must not be after to");
        }
        return null;
    }

    private static IQueryable<Delivery> Filter(IQueryable<Delivery> query, long? profileId, string? status, DateTimeOffset? from, DateTimeOffset? to) =>
        DeliveryOperations.Filter(query, profileId, status, from, to);

    private static async Task<Ok<List<HistoryView>>> History(string customerId, ClaimsPrincipal user, PostbackDb db, int? limit, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        var take = Math.Clamp(limit ?? 200, 1, 1000);
        var entries = await DeliveryOperations.HistoryAsync(db, organizationId, customerId, take, ct);
        return TypedResults.Ok(entries.Select(e => new HistoryView(
            e.Entry.Id, e.Entry.Kind, e.Entry.OrderId, e.Entry.DeliveryId, e.Entry.ProfileId, e.Entry.CustomerType, e.Status, e.Entry.Message,
            e.Entry.DetailsExpiredAt is not null ? null
                : e.Entry.DeliveryId is { } id ? $"/api/v1/deliveries/{id}"
                : e.Entry.Kind == "confirmation" ? $"/api/v1/orders/{e.Entry.OrderId}/confirmation" : null,
            e.Entry.CreatedAt, e.Entry.DetailsExpiredAt)).ToList());
    }

    private static ProblemHttpResult NotFound(long id) => Problems.NotFound($"There is no delivery {id}.");

}
