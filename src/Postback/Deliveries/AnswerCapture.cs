using System.Text.Json;
using System.Text.Json.Serialization;
using Postback.ExportProfiles;
using Postback.Orders;
using Postback.Outbound;

namespace Postback.Deliveries;

/// Reads a profile's captures out of a successful delivery's answer. Pure: the answer in, the
/// values and notes out. Only strings, numbers and booleans are taken (as their text: a number
/// as written, a boolean as true or false); an answer that is not JSON, a pointer that names
/// nothing, or one that names an object, array or null leaves the field unchanged, with a note.
public static class AnswerCapture
{
    public const int MaxValueLength = Orders.OrderParser.MaxExtraValueLength;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static IReadOnlyList<CaptureNote> Read(IReadOnlyList<ProfileCapture> captures, OutboundResponse response)
    {
        if (captures.Count == 0)
        {
            return [];
        }
        if (response.BodyTruncated)
        {
            return Unchanged(captures, $"the answer is longer than {OutboundSender.MaxExcerptBytes} bytes, more than captures read; field unchanged");
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(response.BodyExcerpt);
        }
        catch (JsonException)
        {
            return Unchanged(captures, "the answer is not JSON; field unchanged");
        }
        using (document)
        {
            var notes = new List<CaptureNote>(captures.Count);
            foreach (var capture in captures)
            {
                var element = JsonPointer.Evaluate(document.RootElement, capture.From, out var missing);
                notes.Add(element switch
                {
                    null => new CaptureNote(capture.Field, capture.From, null, $"the answer has no '{missing}' at {capture.From}; field unchanged"),
                    { ValueKind: JsonValueKind.String } e => Taken(capture, e.GetString()!),
                    { ValueKind: JsonValueKind.Number } e => Taken(capture, e.GetRawText()),
                    { ValueKind: JsonValueKind.True } => Taken(capture, "true"),
                    { ValueKind: JsonValueKind.False } => Taken(capture, "false"),
                    { ValueKind: var kind } => new CaptureNote(capture.Field, capture.From, null,
                        $"{capture.From} is {kind.ToString().ToLowerInvariant()} in the answer, not a string, number or boolean; field unchanged"),
                });
            }
            return notes;
        }
    }

    public static string ToJson(IReadOnlyList<CaptureNote> notes) => JsonSerializer.Serialize(notes, Json);

    public static IReadOnlyList<CaptureNote> FromJson(string? json) =>
        json is null ? [] : JsonSerializer.Deserialize<List<CaptureNote>>(json, Json) ?? [];

    private static CaptureNote Taken(ProfileCapture capture, string value)
    {
        if (value.Length > MaxValueLength)
        {
            return new CaptureNote(capture.Field, capture.From, null, $"the value is longer than {MaxValueLength} characters; field unchanged");
        }
        if (value.Any(c => char.IsControl(c) && c is not ('\t' or '\n' or '\r')) || value.Contains('\0'))
        {
            return new CaptureNote(capture.Field, capture.From, null, "the value holds control characters; field unchanged");
        }
        return new CaptureNote(capture.Field, capture.From, value, null);
    }

    private static List<CaptureNote> Unchanged(IReadOnlyList<ProfileCapture> captures, string note) =>
        captures.Select(c => new CaptureNote(c.Field, c.From, null, note)).ToList();
}
