using Postback.Infrastructure;
using System.Text.Json;
using System.Text.Json.Nodes;
using Postback.ExportProfiles;

namespace Postback.Outbound;

/// What one outbound request sent and got back, as an attempt log keeps it: the columns an
/// export delivery attempt and an order confirmation attempt share. Not an entity of its own
/// (each subclass is mapped to its own table, with these as its columns), so it changes no
/// schema. Record fills it from the (already masked) request and the result; RequestJson and
/// ResponseJson are the one view of it both APIs show.
public abstract class RecordedExchange
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public DateTimeOffset StartedAt { get; set; }
    public double DurationMs { get; set; }
    public string RequestMethod { get; set; } = "";
    public string RequestUrl { get; set; } = "";
    public string RequestHeaders { get; set; } = "";
    public string? RequestBody { get; set; }
    public int? ResponseStatus { get; set; }
    public string? ResponseHeaders { get; set; }
    public string? ResponseBody { get; set; }
    public string? Error { get; set; }
    public bool Succeeded { get; set; }

    /// Fills the shared columns. The request must be masked already (SecretMasking): it is
    /// stored as given. Error is the transport's error, at most 1000 characters; callers that
    /// judge the answer themselves set Error and Succeeded afterwards.
    public void Record(RenderedRequest maskedRequest, OutboundResult result, DateTimeOffset startedAt)
    {
        StartedAt = startedAt;
        DurationMs = Math.Round(result.DurationMs, 3);
        RequestMethod = maskedRequest.Method;
        RequestUrl = maskedRequest.Url;
        RequestHeaders = JsonSerializer.Serialize(maskedRequest.Headers, Json);
        RequestBody = maskedRequest.Body;
        ResponseStatus = result.Response?.Status;
        ResponseHeaders = result.Response is { } r ? JsonSerializer.Serialize(r.Headers, Json) : null;
        ResponseBody = result.Response?.BodyExcerpt;
        Error = Text.ClipOrNull(result.Error, 1000);
        Succeeded = result.Succeeded;
    }

    /// The request as the attempt views show it: method, url, headers, body.
    public JsonObject RequestJson() => new()
    {
        ["method"] = RequestMethod,
        ["url"] = RequestUrl,
        ["headers"] = JsonNode.Parse(RequestHeaders),
        ["body"] = RequestBody,
    };

    /// The response as the attempt views show it (status, headers, body excerpt), or null when
    /// there was none.
    public JsonObject? ResponseJson() => ResponseStatus is null ? null : new JsonObject
    {
        ["status"] = ResponseStatus,
        ["headers"] = ResponseHeaders is null ? null : JsonNode.Parse(ResponseHeaders),
        ["bodyExcerpt"] = ResponseBody,
    };
}
