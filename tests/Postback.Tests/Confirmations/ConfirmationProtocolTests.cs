using Postback.Confirmations;
using Postback.ExportProfiles;
using Postback.Outbound;
using Postback.Infrastructure;

namespace Postback.Tests.Confirmations;

/// The seed 002 contract as plain functions: the request sent, how each kind of answer is read,
/// the retry schedule, the settings rules and the alert text.
public sealed class ConfirmationProtocolTests
{
    private static OutboundResult Answer(int status, string body, bool truncated = false) =>
        new(new OutboundResponse(status, [], body, truncated), 5, null);

    [Fact]
    public void The_request_is_a_json_post_of_company_and_order_with_the_token_header()
    {
        var request = ConfirmationProtocol.BuildRequest("https://theexternalsystem.com/confirm", "tok-123", 6316, 6908);
        Assert.Equal("POST", request.Method);
        Assert.Equal("https://theexternalsystem.com/confirm", request.Url);
        Assert.Equal("""{"companyId":6316,"orderId":6908}""", request.Body);
        Assert.Equal("application/json", request.Header("Content-Type"));
        Assert.Equal("tok-123", request.Header("authenticationToken"));
    }

    [Fact]
    public void Without_a_token_no_token_header_is_sent()
    {
        var request = ConfirmationProtocol.BuildRequest("https://theexternalsystem.com/", null, 1, 2);
        Assert.Null(request.Header("authenticationToken"));
        Assert.Single(request.Headers);
    }

    [Theory]
    [InlineData("""{"status":"1","message":"Synced as SO-1"}""", Verdict.Confirmed, "Synced as SO-1")]
    [InlineData("""{"status":1,"message":"ok"}""", Verdict.Confirmed, "ok")]
    [InlineData("""{"status":true}""", Verdict.Confirmed, null)]
    [InlineData("""{"status":"true","message":"fine"}""", Verdict.Confirmed, "fine")]
    [InlineData("""{"Status":"1","Message":"case does not matter"}""", Verdict.Confirmed, "case does not matter")]
    [InlineData("""{"status":"0","message":"Customer not found in ERP"}""", Verdict.Failed, "Customer not found in ERP")]
    [InlineData("""{"status":0,"message":"no"}""", Verdict.Failed, "no")]
    [InlineData("""{"status":false,"message":"no"}""", Verdict.Failed, "no")]
    [InlineData("""{"status":"0","message":42}""", Verdict.Failed, "42")]
    public void Status_and_message_are_read_in_each_documented_form(string body, Verdict verdict, string? message)
    {
        var judgement = ConfirmationProtocol.Judge(Answer(200, body));
        Assert.Equal(verdict, judgement.Verdict);
        Assert.Equal(message, judgement.Message);
        if (verdict == Verdict.Failed)
        {
            Assert.Equal("the receiver answered status 0", judgement.Error);
        }
        else
        {
            Assert.Null(judgement.Error);
        }
    }

    // Hand-written receivers may answer with lone surrogate escapes; reading them must give a
    // verdict, never throw (a throw left the confirmation to be sent again when its lease ran out).
    [Theory]
    [InlineData("""{"status":"1","message":"odd \ud800 text"}""", Verdict.Confirmed, "\"odd \\ud800 text\"")]
    [InlineData("""{"x\udc00":1,"Status":"1","Message":"ok"}""", Verdict.Confirmed, "ok")]
    [InlineData("""{"status":"\ud800"}""", Verdict.Failed, null)]
    public void Lone_surrogate_escapes_in_an_answer_give_a_verdict(string body, Verdict verdict, string? message)
    {
        var judgement = ConfirmationProtocol.Judge(Answer(200, body));
        Assert.Equal(verdict, judgement.Verdict);
        Assert.Equal(message, judgement.Message);
        Assert.Equal(verdict == Verdict.Failed, judgement.Error?.StartsWith("the receiver's answer could not be read", StringComparison.Ordinal) ?? false);
        Assert.Equal(Verdict.Retry, ConfirmationProtocol.Judge(Answer(500, body)).Verdict);
    }

    [Theory]
    [InlineData("short", "short")]
    [InlineData("abcdefghijkl", "abcdefghi…")]
    [InlineData("aaaaaaaa\U0001F600b", "aaaaaaaa…")]
    public void Clip_stays_within_its_length_and_never_splits_an_emoji(string text, string clipped) =>
        Assert.Equal(clipped, Text.Clip(text, 10, "…"));

    [Theory]
    [InlineData("<html>Server Error</html>", "it is not JSON")]
    [InlineData("", "it is not JSON")]
    [InlineData("[1,2]", "it is not a JSON object")]
    [InlineData("""{"message":"where is the status"}""", "it has no \"status\"")]
    [InlineData("""{"status":"2"}""", "\"status\" must be 1 or 0 (or true/false), not \"2\"")]
    [InlineData("""{"status":null}""", "\"status\" must be 1 or 0 (or true/false), not null")]
    public void An_unreadable_answer_fails_and_says_why(string body, string why)
    {
        var judgement = ConfirmationProtocol.Judge(Answer(200, body));
        Assert.Equal(Verdict.Failed, judgement.Verdict);
        Assert.StartsWith("the receiver's answer could not be read: " + why + "; it began: ", judgement.Error);
        Assert.EndsWith(body, judgement.Error);
    }

    [Fact]
    public void An_answer_too_long_to_read_whole_is_unreadable()
    {
        var judgement = ConfirmationProtocol.Judge(Answer(200, """{"status":"1","message":"aaaa""", truncated: true));
        Assert.Equal(Verdict.Failed, judgement.Verdict);
        Assert.Contains("longer than 4096 bytes", judgement.Error);
    }

    [Theory]
    [InlineData(500)]
    [InlineData(502)]
    [InlineData(503)]
    [InlineData(408)]
    [InlineData(429)]
    public void Server_errors_are_worth_another_try(int status)
    {
        var judgement = ConfirmationProtocol.Judge(Answer(status, "busy"));
        Assert.Equal(Verdict.Retry, judgement.Verdict);
        Assert.Equal($"the receiver answered HTTP {status}", judgement.Error);
    }

    [Fact]
    public void No_answer_at_all_is_worth_another_try_and_keeps_the_senders_reason()
    {
        var judgement = ConfirmationProtocol.Judge(new OutboundResult(null, 1000, "timed out after 1 s"));
        Assert.Equal(Verdict.Retry, judgement.Verdict);
        Assert.Equal("timed out after 1 s", judgement.Error);
    }

    [Fact]
    public void A_client_error_fails_at_once_with_the_receivers_message_if_it_gave_one()
    {
        var judgement = ConfirmationProtocol.Judge(Answer(401, """{"status":"0","message":"bad token"}"""));
        Assert.Equal(Verdict.Failed, judgement.Verdict);
        Assert.Equal("the receiver answered HTTP 401", judgement.Error);
        Assert.Equal("bad token", judgement.Message);
    }

    [Fact]
    public void Retries_back_off_exponentially_and_stop_after_max_attempts()
    {
        var options = new ConfirmationOptions { MaxAttempts = 4, FirstRetrySeconds = 2 };
        var now = new DateTimeOffset(2026, 11, 23, 0, 0, 0, TimeSpan.Zero);
        // random 0.5 is the middle of the ±20% jitter: exactly 2 s, 4 s, 8 s.
        Assert.Equal(now.AddSeconds(2), ConfirmationProtocol.NextAttempt(options, 1, now, null, 0.5));
        Assert.Equal(now.AddSeconds(4), ConfirmationProtocol.NextAttempt(options, 2, now, null, 0.5));
        Assert.Equal(now.AddSeconds(8), ConfirmationProtocol.NextAttempt(options, 3, now, null, 0.5));
        Assert.Null(ConfirmationProtocol.NextAttempt(options, 4, now, null, 0.5));
        // Retry-After is honoured when it is within the cap.
        Assert.Equal(now.AddSeconds(30), ConfirmationProtocol.NextAttempt(options, 1, now, TimeSpan.FromSeconds(30), 0.5));
        Assert.Equal(now.AddSeconds(2), ConfirmationProtocol.NextAttempt(options, 1, now, TimeSpan.FromDays(2), 0.5));
    }

    [Fact]
    public void Valid_settings_are_normalised()
    {
        var (valid, errors) = ConfirmationSettingsValidation.Validate(
            new ConfirmationSettingsInput(true, " https://theexternalsystem.com/confirm ", "tok", [" sales@example.com ", "ops@example.org"]), false);
        Assert.False(errors.Any);
        Assert.Equal("https://theexternalsystem.com/confirm", valid!.Url);
        Assert.Equal(["sales@example.com", "ops@example.org"], valid.NotificationEmails);
    }

    [Theory]
    [InlineData(true, null, null, 0, "url", "is required when the webhook is enabled")]
    [InlineData(true, "https://x.example.com/confirm?a=1", null, 0, "url", ProfileValidation.QuestionMarkError)]
    [InlineData(true, "ftp://x.example.com/", null, 0, "url", "must be an http or https URL, not ftp:")]
    [InlineData(false, "http://127.0.0.1/confirm", null, 0, "url", null)]
    [InlineData(true, "https://x.example.com/", "012345678901234567890123456789012345678901234567890", 0, "authenticationToken", "must be at most 50 characters")]
    [InlineData(true, "https://x.example.com/", "line\nbreak", 0, "authenticationToken", "must be printable ASCII (it is sent as an HTTP header)")]
    [InlineData(true, "https://x.example.com/", null, 6, "notificationEmails", "at most 5 addresses, not 6")]
    public void Invalid_settings_name_the_field_and_reason(bool enabled, string? url, string? token, int emails, string field, string? reason)
    {
        var addresses = Enumerable.Range(1, emails).Select(i => (string?)$"sales{i}@example.com").ToList();
        var (valid, errors) = ConfirmationSettingsValidation.Validate(new ConfirmationSettingsInput(enabled, url, token, addresses), false);
        Assert.Null(valid);
        var all = errors.ToDictionary();
        Assert.True(all.ContainsKey(field), $"no error for {field}: {string.Join("; ", all.Select(e => e.Key + ": " + string.Join(", ", e.Value)))}");
        if (reason is not null)
        {
            Assert.Equal(reason, all[field][0]);
        }
        else
        {
            Assert.Contains("private or loopback", all[field][0]);
        }
    }

    [Theory]
    [InlineData("not-an-address")]
    [InlineData("a@b")]
    [InlineData("Jane <jane@example.com>")]
    [InlineData("a@example.com, b@example.com")]
    [InlineData("jane doe@example.com")]
    public void Notification_addresses_must_be_plain_addresses(string address)
    {
        var (_, errors) = ConfirmationSettingsValidation.Validate(new ConfirmationSettingsInput(false, null, null, ["ok@example.com", address]), false);
        Assert.True(errors.ToDictionary().ContainsKey("notificationEmails[1]"));
    }

    [Fact]
    public void A_repeated_address_is_refused()
    {
        var (_, errors) = ConfirmationSettingsValidation.Validate(new ConfirmationSettingsInput(false, null, null, ["ok@example.com", "OK@example.com"]), false);
        Assert.Equal("OK@example.com is listed twice", errors.ToDictionary()["notificationEmails[1]"][0]);
    }

    [Fact]
    public void The_alert_names_order_company_reason_and_how_to_reconfirm()
    {
        var confirmation = new OrderConfirmation
        {
            Id = 7, OrganizationId = 1, OrderId = 6908, Round = 2, Attempts = 1, Status = ConfirmationStatus.Failed,
            Message = "Customer not found", Error = "the receiver answered status 0",
            LastAttemptAt = new DateTimeOffset(2026, 11, 23, 1, 2, 3, TimeSpan.Zero),
        };
        var emails = ConfirmationAlert.Emails(confirmation, ["a@example.com", "A@example.com", "b@example.com"], "Acme", 6316, "https://x.example.com/", confirmation.LastAttemptAt.Value).ToList();
        Assert.Equal(["a@example.com", "b@example.com"], emails.Select(e => e.Recipient));
        Assert.Equal(["confirmation:7:2:a@example.com", "confirmation:7:2:b@example.com"], emails.Select(e => e.DedupKey));
        var email = emails[0];
        Assert.Equal("Order 6908 could not be confirmed (company 6316)", email.Subject);
        Assert.Contains("could not confirm order 6908 of company 6316 (Acme)", email.Body);
        Assert.Contains("Message from the external system: Customer not found", email.Body);
        Assert.Contains("Error: the receiver answered status 0", email.Body);
        Assert.Contains("POST /api/v1/orders/6908/reconfirm", email.Body);
        Assert.Contains("2026-11-23 01:02:03 UTC", email.Body);
    }
}
