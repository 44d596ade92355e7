using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Postback.Infrastructure;

namespace Postback.Orders;

/// Reads one event of POST /api/v1/events: {eventId?, type, occurredAt?, order}.
public static partial class EventParser
{
    public sealed record Result(IncomingEvent? Event, ValidationErrors Errors, IReadOnlyList<string> StrippedFields);

    // A clock a few hours off is common; an occurredAt far outside this range is a bug or an
    // attack, and the far future overflowed due-time arithmetic (occurredAt + export delay).
    public static readonly DateTimeOffset EarliestOccurredAt = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);
    public static readonly TimeSpan MaxOccurredAtAhead = TimeSpan.FromDays(1);

    public static Result Parse(JsonElement json, DateTimeOffset now)
    {
        var errors = new ValidationErrors();
        IReadOnlyList<string> stripped = [];
        if (json.ValueKind != JsonValueKind.Object)
        {
            errors.Add("body", "must be a JSON object {eventId?, type, occurredAt?, order}");
            return new Result(null, errors, stripped);
        }

        string? eventId = null, type = null;
        DateTimeOffset? occurredAt = null;
        OrderData? order = null;
        var sawOrder = false;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in json.EnumerateObject())
        {
            // JSON lets a key repeat and most readers keep the last: which one the client meant
            // is a guess we do not make (OrderParser refuses the same inside order).
            if (!seen.Add(p.Name))
            {
                errors.Add(p.Name, "is given more than once");
                continue;
            }
            switch (p.Name)
            {
                case "eventId":
                    if (p.Value.ValueKind == JsonValueKind.Null)
                    {
                        break;
                    }
                    eventId = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : p.Value.ValueKind == JsonValueKind.Number ? p.Value.GetRawText() : null;
                    if (eventId is null || !EventIdPattern().IsMatch(eventId))
                    {
                        errors.Add("eventId", "must be 1 to 100 letters, digits, '.', '_', ':' or '-'");
                    }
                    break;
                case "type":
                    type = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : null;
                    if (!CustomerTypes.IsKnown(type))
                    {
                        errors.Add("type", $"'{(type ?? p.Value.GetRawText())}' is not a customer type; use one of {CustomerTypes.ListForErrors}");
                    }
                    break;
                case "occurredAt":
                    if (p.Value.ValueKind == JsonValueKind.Null)
                    {
                        break;
                    }
                    if (p.Value.ValueKind == JsonValueKind.String
                        && DateTimeOffset.TryParse(p.Value.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at))
                    {
                        occurredAt = at.ToUniversalTime();
                        if (occurredAt < EarliestOccurredAt)
                        {
                            errors.Add("occurredAt", "must not be before 2000-01-01T00:00:00Z");
                        }
                        else if (occurredAt > now + MaxOccurredAtAhead)
                        {
                            errors.Add("occurredAt", $"must not be more than a day in the future (the hub's time is {now:yyyy-MM-dd'T'HH:mm:ss'Z'})");
                        }
                    }
                    else
                    {
                        errors.Add("occurredAt", "must be an ISO 8601 date and time such as 2024-07-31T16:24:58Z");
                    }
                    break;
                case "order":
                    sawOrder = true;
                    var parsed = OrderParser.Parse(p.Value);
                    errors.AddRange(parsed.Errors, "order");
                    order = parsed.Order;
                    stripped = parsed.StrippedFields;
                    break;
                default:
                    errors.Add(p.Name, "is not a known field; an event has eventId, type, occurredAt and order");
                    break;
            }
        }
        if (type is null && !errors.ToDictionary().ContainsKey("type"))
        {
            errors.Add("type", "is required");
        }
        if (!sawOrder)
        {
            errors.Add("order", "is required");
        }
        return errors.Any
            ? new Result(null, errors, stripped)
            : new Result(new IncomingEvent(eventId, type!, occurredAt, order!), errors, stripped);
    }

    [GeneratedRegex("^[A-Za-z0-9._:-]{1,100}$")]
    private static partial Regex EventIdPattern();
}
