using System.Globalization;
using System.Text.Json;
using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.Outbound;
using Postback.Infrastructure;

namespace Postback.Confirmations;

/// What an answer means for the confirmation: confirmed, failed for good, or worth another try.
public enum Verdict
{
    Confirmed,
    Failed,
    Retry,
}

public sealed record Judgement(Verdict Verdict, string? Message, string? Error);

/// The wire contract of seed 002 as plain functions: the request, and how to read the answer.
public static class ConfirmationProtocol
{
    public const string TokenHeader = "authenticationToken";
    public const int MaxMessageLength = 1000;

    public static RenderedRequest BuildRequest(string url, string? authenticationToken, long companyId, long orderId)
    {
        var body = string.Create(CultureInfo.InvariantCulture, $$"""{"companyId":{{companyId}},"orderId":{{orderId}}}""");
        List<KeyValuePair<string, string>> headers = [new("Content-Type", "application/json")];
        if (!string.IsNullOrEmpty(authenticationToken))
        {
            headers.Add(new(TokenHeader, authenticationToken));
        }
        return new RenderedRequest("POST", url, headers, body);
    }

    /// Status 1 confirms; status 0 is the receiver's business error, final until an operator
    /// reconfirms. No answer, a timeout, a 5xx, 408 or 429 is worth another try. Any other
    /// non-2xx, or a 2xx whose body is not `{"status": 1|0, ...}`, fails and says why.
    public static Judgement Judge(OutboundResult result)
    {
        if (result.Response is not { } response)
        {
            return new(Verdict.Retry, null, result.Error ?? "no answer");
        }
        var status = response.Status;
        if (status is >= 500 or 408 or 429)
        {
            return new(Verdict.Retry, TryMessage(response.BodyExcerpt), $"the receiver answered HTTP {status}");
        }
        if (status is < 200 or >= 300)
        {
            return new(Verdict.Failed, TryMessage(response.BodyExcerpt), $"the receiver answered HTTP {status}");
        }
        if (result.Error is { } broken)
        {
            // It answered 2xx, but the body broke off on the way: we do not know what it said.
            return new(Verdict.Retry, null, broken);
        }
        if (response.BodyTruncated)
        {
            return Unreadable($"it is longer than {OutboundSender.MaxExcerptBytes} bytes", response.BodyExcerpt);
        }
        return Read(response.BodyExcerpt);
    }

    public static Judgement Read(string body)
    {
        try
        {
            return ReadObject(body);
        }
        catch (InvalidOperationException)
        {
            // A property name with a lone surrogate escape cannot be read as text.
            return Unreadable("it holds invalid text (a lone UTF-16 surrogate escape)", body);
        }
    }

    private static Judgement ReadObject(string body)
    {
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(body);
            root = document.RootElement.Clone();
        }
        catch (JsonException)
        {
            return Unreadable("it is not JSON", body);
        }
        if (root.ValueKind != JsonValueKind.Object)
        {
            return Unreadable("it is not a JSON object", body);
        }
        var message = Property(root, "message") is { } m ? Text(m) : null;
        if (Property(root, "status") is not { } statusElement)
        {
            return Unreadable("it has no \"status\"", body);
        }
        return StatusOf(statusElement) switch
        {
            true => new(Verdict.Confirmed, message, null),
            false => new(Verdict.Failed, message, "the receiver answered status 0"),
            null => Unreadable($"\"status\" must be 1 or 0 (or true/false), not {Infrastructure.Text.Clip(statusElement.GetRawText(), 40, "…")}", body),
        };
    }

    private static Judgement Unreadable(string why, string body) =>
        new(Verdict.Failed, null, $"the receiver's answer could not be read: {why}; it began: {Infrastructure.Text.Clip(body, 200, "…")}");

    private static bool? StatusOf(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Number when e.TryGetInt32(out var n) && n is 0 or 1 => n == 1,
        JsonValueKind.String => StringOrRaw(e).Trim().ToLowerInvariant() switch
        {
            "1" or "true" => true,
            "0" or "false" => false,
            _ => null,
        },
        _ => null,
    };

    // Receivers are written by hand: "Status" and "status" mean the same.
    private static JsonElement? Property(JsonElement obj, string name)
    {
        JsonElement? caseless = null;
        foreach (var p in obj.EnumerateObject())
        {
            string other;
            try
            {
                other = p.Name;
            }
            catch (InvalidOperationException)
            {
                // A name with a lone surrogate escape is not "status" or "message" in any case.
                continue;
            }
            if (other.Equals(name, StringComparison.Ordinal))
            {
                return p.Value;
            }
            if (caseless is null && other.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                caseless = p.Value;
            }
        }
        return caseless;
    }

    private static string? Text(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => Infrastructure.Text.Clip(StringOrRaw(e), MaxMessageLength, "…"),
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        _ => Infrastructure.Text.Clip(e.GetRawText(), MaxMessageLength, "…"),
    };

    // A string holding a lone surrogate escape ("\ud800") cannot be read as text; its JSON
    // spelling is kept instead, so a hand-written answer never stops the confirmation.
    private static string StringOrRaw(JsonElement e)
    {
        try
        {
            return e.GetString()!;
        }
        catch (InvalidOperationException)
        {
            return e.GetRawText();
        }
    }

    private static string? TryMessage(string body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.ValueKind == JsonValueKind.Object && Property(document.RootElement, "message") is { } m ? Text(m) : null;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return null;
        }
    }

    /// When to try again after attempt number <paramref name="attempts"/> failed in a way worth
    /// retrying, or null when that was the last one.
    public static DateTimeOffset? NextAttempt(ConfirmationOptions options, int attempts, DateTimeOffset now, TimeSpan? retryAfter, double random)
    {
        if (attempts >= options.MaxAttempts)
        {
            return null;
        }
        var policy = new RetryPolicy(TimeSpan.FromSeconds(options.FirstRetrySeconds), TimeSpan.FromSeconds(options.RetryCapSeconds), null);
        var delay = RetrySchedule.Backoff(policy, attempts, random);
        if (retryAfter is { } after && after > TimeSpan.Zero && after <= policy.Cap)
        {
            delay = after;
        }
        return now + delay;
    }
}
