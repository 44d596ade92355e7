using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Postback.Infrastructure;
using Postback.Observability;
using Postback.Orders;
using Postback.Organizations;

namespace Postback.Ingest;

public sealed record EventAccepted(
    long Id,
    string EventId,
    string Type,
    long OrderId,
    DateTimeOffset OccurredAt,
    DateTimeOffset ReceivedAt,
    bool Duplicate,
    IReadOnlyList<string> StrippedFields,
    IReadOnlyList<ScheduledDelivery> Deliveries);

public sealed record BatchAccepted(IReadOnlyList<EventAccepted> Events);

internal static class EventsApi
{
    public const int MaxEventBytes = 256 * 1024;
    public const int MaxBatchBytes = 8 * 1024 * 1024;
    public const int MaxBatchEvents = 500;

    public static RouteGroupBuilder MapEvents(this RouteGroupBuilder api)
    {
        api.MapPost("/events", PostEvent)
            .WithMetadata(new RequestSizeLimitAttribute(MaxEventBytes), new DocumentedBodyAttribute(typeof(EventRequest)))
            .WithSummary("Store an order event: upsert its order, record the event (idempotent on eventId).");
        api.MapPost("/events/batch", PostBatch)
            .WithMetadata(new RequestSizeLimitAttribute(MaxBatchBytes), new DocumentedBodyAttribute(typeof(BatchRequest)))
            .WithSummary($"Store up to {MaxBatchEvents} events at once: all are stored, or none.");
        return api;
    }

    private static async Task<Results<Accepted<EventAccepted>, Ok<EventAccepted>, ValidationProblem, ProblemHttpResult>> PostEvent(
        JsonElement body, ClaimsPrincipal user, GroupCommit ingest, TimeProvider time, CancellationToken ct)
    {
        var parsed = EventParser.Parse(body, time.GetUtcNow());
        if (parsed.Event is null)
        {
            return Problems.Validation(parsed.Errors);
        }
        IReadOnlyList<EventAccepted> accepted;
        try
        {
            accepted = await StoreAsync(user.OrganizationId(), [parsed], ingest, ct);
        }
        catch (EventIdConflictException conflict)
        {
            return Problems.Conflict("eventId", conflict.Message);
        }
        var result = accepted[0];
        return result.Duplicate
            ? TypedResults.Ok(result)
            : TypedResults.Accepted($"/api/v1/orders/{result.OrderId}", result);
    }

    private static async Task<Results<Accepted<BatchAccepted>, ValidationProblem, ProblemHttpResult>> PostBatch(
        JsonElement body, ClaimsPrincipal user, GroupCommit ingest, TimeProvider time, CancellationToken ct)
    {
        if (body.ValueKind != JsonValueKind.Object || !body.TryGetProperty("events", out var list) || list.ValueKind != JsonValueKind.Array)
        {
            return Problems.Validation("events", "is required: send {\"events\": [ ... ]}");
        }
        var sawEvents = false;
        foreach (var p in body.EnumerateObject())
        {
            if (p.Name != "events")
            {
                return Problems.Validation(p.Name, "is not a known field; a batch has only events");
            }
            if (sawEvents)
            {
                return Problems.Validation("events", "is given more than once");
            }
            sawEvents = true;
        }
        var count = list.GetArrayLength();
        if (count is 0 or > MaxBatchEvents)
        {
            return Problems.Validation("events", $"must hold 1 to {MaxBatchEvents} events");
        }

        var errors = new ValidationErrors();
        var parsed = new List<EventParser.Result>(count);
        var firstIndexOf = new Dictionary<string, int>(StringComparer.Ordinal);
        var index = 0;
        var now = time.GetUtcNow();
        foreach (var element in list.EnumerateArray())
        {
            var result = EventParser.Parse(element, now);
            errors.AddRange(result.Errors, $"events[{index}]");
            if (result.Event?.EventId is { } id && !firstIndexOf.TryAdd(id, index))
            {
                errors.Add($"events[{index}].eventId", $"repeats events[{firstIndexOf[id]}].eventId");
            }
            parsed.Add(result);
            index++;
        }
        if (errors.Any)
        {
            return Problems.Validation(errors);
        }
        try
        {
            var accepted = await StoreAsync(user.OrganizationId(), parsed, ingest, ct);
            return TypedResults.Accepted((string?)null, new BatchAccepted(accepted));
        }
        catch (EventIdConflictException conflict)
        {
            return Problems.Conflict($"events[{conflict.Index}].eventId", conflict.Message);
        }
    }

    private static async Task<IReadOnlyList<EventAccepted>> StoreAsync(
        long organizationId, IReadOnlyList<EventParser.Result> parsed, GroupCommit ingest, CancellationToken ct)
    {
        using var span = PostbackTracing.StartIngest("api", parsed.Count);
        var stored = await ingest.IngestAsync(organizationId, parsed.Select(p => p.Event!).ToList(), ct);
        PostbackMetrics.EventsStored("api", stored.Count(s => !s.Duplicate));
        return stored.Select((s, i) => new EventAccepted(
            s.Event.Id,
            s.Event.EventId,
            s.Event.Type,
            s.Event.OrderId,
            s.Event.OccurredAt,
            s.Event.ReceivedAt,
            s.Duplicate,
            parsed[i].StrippedFields,
            s.Deliveries)).ToList();
    }
}
