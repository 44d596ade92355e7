using System.Text.Json;
using System.Text.Json.Serialization;

namespace Postback.Orders;

/// One capture's result on one delivery attempt (Deliveries/AnswerCapture): the value taken,
/// or why nothing was taken (Note). Kept on the attempt as JSON, so the attempt log says what
/// the answer put on the order.
public sealed record CaptureNote(
    string Field,
    string From,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Value,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Note);

/// Which delivery captured a field: its event decides which capture is newer.
public sealed record CaptureSource(long EventKey, long DeliveryId, long ProfileId, DateTimeOffset At);

/// A field captured onto the order, as the order's views show it.
public sealed record CapturedField(string Field, string? Value, long DeliveryId, long ProfileId, DateTimeOffset At);

/// Puts captured values on an order. The value goes into the order's data as an extra field,
/// so every later export and file renders it as a merge tag like any field the CRM sent; its
/// source goes into the order's CaptureSources. A capture from an older event never replaces
/// one from a newer event (events are ordered by arrival at the hub: their key), so a retry
/// of an old delivery that succeeds late cannot put back a stale number.
public static class OrderCaptures
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static Dictionary<string, CaptureSource> Sources(string? json) =>
        json is null ? new(StringComparer.OrdinalIgnoreCase)
            : new(JsonSerializer.Deserialize<Dictionary<string, CaptureSource>>(json, Json) ?? [], StringComparer.OrdinalIgnoreCase);

    public static IReadOnlyList<CapturedField> List(string? sourcesJson, OrderData order) =>
        sourcesJson is null ? [] : Sources(sourcesJson).OrderBy(s => s.Key, StringComparer.OrdinalIgnoreCase)
            .Select(s => new CapturedField(s.Key, order.Get(s.Key), s.Value.DeliveryId, s.Value.ProfileId, s.Value.At)).ToList();

    /// The order's new data and sources, and the notes with what was kept for a newer event;
    /// null data when nothing changed.
    public static (string? Data, string? Sources, IReadOnlyList<CaptureNote> Notes) Apply(
        string data, string? sourcesJson, IReadOnlyList<CaptureNote> notes, CaptureSource source)
    {
        var sources = Sources(sourcesJson);
        var order = OrderJson.Deserialize(data);
        var fields = new Dictionary<string, string>(order.Fields, StringComparer.OrdinalIgnoreCase);
        var changed = false;
        var result = new List<CaptureNote>(notes.Count);
        foreach (var note in notes)
        {
            if (note.Value is null)
            {
                result.Add(note);
                continue;
            }
            if (sources.TryGetValue(note.Field, out var earlier) && earlier.EventKey > source.EventKey)
            {
                result.Add(note with { Note = $"not stored: delivery {earlier.DeliveryId}, for a later event of the order, captured {note.Field} already" });
                continue;
            }
            fields[note.Field] = note.Value;
            sources[note.Field] = source;
            changed = true;
            result.Add(note);
        }
        if (!changed)
        {
            return (null, null, result);
        }
        var updated = new OrderData { OrderId = order.OrderId, Fields = fields, Items = order.Items };
        return (OrderJson.Serialize(updated), JsonSerializer.Serialize(sources, Json), result);
    }
}
