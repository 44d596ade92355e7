using Microsoft.Extensions.Time.Testing;
using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.Outbound;
using Postback.Storage;
using Postback.Orders;

namespace Postback.Tests.Deliveries;

public sealed class RetryScheduleTests
{
    private static readonly RetryPolicy Policy = new(TimeSpan.FromSeconds(2), TimeSpan.FromHours(1), null);

    [Theory]
    [InlineData(1, 2)]
    [InlineData(2, 4)]
    [InlineData(3, 8)]
    [InlineData(4, 16)]
    [InlineData(10, 1024)]
    [InlineData(11, 2048)]
    [InlineData(12, 3600)] // capped at an hour
    [InlineData(500, 3600)]
    public void Backoff_doubles_from_the_first_delay_up_to_the_cap(int attempts, double seconds)
    {
        // random 0.5 is the middle of the ±20% jitter: no jitter at all.
        Assert.Equal(seconds, RetrySchedule.Backoff(Policy, attempts, 0.5).TotalSeconds, precision: 6);
    }

    [Theory]
    [InlineData(0.0, 0.8)]
    [InlineData(0.999999, 1.2)]
    public void Jitter_spreads_a_retry_by_twenty_percent_either_way(double random, double factor)
    {
        Assert.Equal(8 * factor, RetrySchedule.Backoff(Policy, 3, random).TotalSeconds, precision: 3);
    }

    [Fact]
    public void Jitter_never_goes_past_the_cap()
    {
        Assert.Equal(3600, RetrySchedule.Backoff(Policy, 40, 0.999).TotalSeconds, precision: 6);
    }

    [Fact]
    public void Without_a_give_up_age_retries_never_end()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var firstDue = time.GetUtcNow();
        time.Advance(TimeSpan.FromDays(365));
        var next = RetrySchedule.NextAttempt(Policy, 10_000, time.GetUtcNow(), firstDue, null, 0.5);
        Assert.Equal(time.GetUtcNow() + TimeSpan.FromHours(1), next);
    }

    [Fact]
    public void A_give_up_age_ends_retries_once_the_delivery_is_that_old()
    {
        var policy = Policy with { GiveUpAfter = TimeSpan.FromHours(24) };
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var firstDue = time.GetUtcNow();

        time.Advance(TimeSpan.FromHours(23));
        Assert.NotNull(RetrySchedule.NextAttempt(policy, 20, time.GetUtcNow(), firstDue, null, 0.5));
        time.Advance(TimeSpan.FromHours(1));
        Assert.Null(RetrySchedule.NextAttempt(policy, 21, time.GetUtcNow(), firstDue, null, 0.5));
    }

    [Theory]
    [InlineData(30, 30)]
    [InlineData(7200, 7200)]
    [InlineData(200_000, 86_400)] // a receiver cannot park a delivery for more than a day
    public void Retry_After_replaces_the_backoff(int retryAfter, int expected)
    {
        var now = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var next = RetrySchedule.NextAttempt(Policy, 1, now, now, TimeSpan.FromSeconds(retryAfter), 0.5);
        Assert.Equal(now.AddSeconds(expected), next);
    }

    private static ClaimedDelivery Claimed(int attempts, DateTimeOffset firstDue) =>
        new(7, 1, 3, 11, 6908, "C1", "new_sale", "http://127.0.0.1:80", attempts, firstDue);

    private static ExportProfile Profile(int capMinutes = 60, int? giveUpHours = null) => new()
    {
        Id = 3, OrganizationId = 1, Name = "p", PostbackUrl = "http://127.0.0.1/x", RetryCapMinutes = capMinutes, GiveUpAfterHours = giveUpHours,
    };

    private static readonly RenderedRequest Request = new("GET", "http://127.0.0.1/x?a=1", [new("X-Api-Key", "secret")], null);

    [Fact]
    public void A_failed_attempt_is_due_again_after_the_backoff_measured_from_its_end()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));
        var started = time.GetUtcNow();
        time.Advance(TimeSpan.FromMilliseconds(300));
        var result = new OutboundResult(new OutboundResponse(500, [], "nope", false), 300, null);

        var outcome = Postback.Deliveries.DeliveryWorker.Outcome(Claimed(2, started), Profile(), Request, result, started, time.GetUtcNow(), TimeSpan.FromSeconds(2), 0.5);

        Assert.Equal("pending", outcome.Status);
        Assert.Equal(time.GetUtcNow() + TimeSpan.FromSeconds(8), outcome.NextDueAt); // third attempt: 2 × 2²
        Assert.Equal(3, outcome.Attempt!.Number);
        Assert.Equal("the receiver answered 500", outcome.Error);
        Assert.Equal(500, outcome.StatusCode);
        Assert.Contains("********", outcome.Attempt.RequestHeaders);
        Assert.DoesNotContain("secret", outcome.Attempt.RequestHeaders);
    }

    [Fact]
    public void The_profiles_cap_limits_the_backoff()
    {
        var now = new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);
        var result = new OutboundResult(null, 10, "could not connect");
        var outcome = Postback.Deliveries.DeliveryWorker.Outcome(Claimed(30, now), Profile(capMinutes: 5), Request, result, now, now, TimeSpan.FromSeconds(2), 0.5);
        Assert.Equal(now.AddMinutes(5), outcome.NextDueAt);
        Assert.Equal("could not connect", outcome.Error);
    }

    [Fact]
    public void Past_the_give_up_age_a_failure_is_final()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 12, 0, 0, TimeSpan.Zero));
        var firstDue = time.GetUtcNow();
        time.Advance(TimeSpan.FromHours(3));
        var result = new OutboundResult(new OutboundResponse(404, [], "", false), 5, null);
        var outcome = Postback.Deliveries.DeliveryWorker.Outcome(Claimed(40, firstDue), Profile(giveUpHours: 2), Request, result, time.GetUtcNow(), time.GetUtcNow(), TimeSpan.FromSeconds(2), 0.5);
        Assert.Equal("failed", outcome.Status);
        Assert.Null(outcome.NextDueAt);
        Assert.Contains("gave up after 2 h", outcome.Error);
    }

    [Fact]
    public void A_2xx_answer_succeeds()
    {
        var now = DateTimeOffset.UnixEpoch;
        var result = new OutboundResult(new OutboundResponse(204, [], "", false), 5, null);
        var outcome = Postback.Deliveries.DeliveryWorker.Outcome(Claimed(0, now), Profile(), Request, result, now, now, TimeSpan.FromSeconds(2), 0.5);
        Assert.Equal("succeeded", outcome.Status);
        Assert.True(outcome.Attempt!.Succeeded);
        Assert.Equal(1, outcome.Attempt.Number);
    }
}

public sealed class EndpointHealthTests
{
    private const string Endpoint = "http://127.0.0.1:9000";
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void After_the_threshold_the_endpoint_is_held_then_probed_once_then_reopened()
    {
        var health = new EndpointHealth(failureThreshold: 3, maxInFlightPerEndpoint: 10);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(EndpointHealth.Decision.Send, health.Admit(Endpoint, T0));
        }
        for (var i = 0; i < 3; i++)
        {
            health.Report(Endpoint, EndpointHealth.Decision.Send, succeeded: false, T0);
        }
        // Held for 2 s: nothing goes out, and the claim query leaves it alone.
        Assert.Equal(EndpointHealth.Decision.Wait, health.Admit(Endpoint, T0.AddSeconds(1)));
        Assert.Contains(Endpoint, health.Blocked(T0.AddSeconds(1)));

        // When the hold ends, one probe; everything else waits for its answer.
        Assert.Equal(EndpointHealth.Decision.Probe, health.Admit(Endpoint, T0.AddSeconds(2)));
        Assert.Equal(EndpointHealth.Decision.Wait, health.Admit(Endpoint, T0.AddSeconds(2)));
        Assert.Contains(Endpoint, health.Blocked(T0.AddSeconds(2)));

        // The probe fails: held twice as long.
        health.Report(Endpoint, EndpointHealth.Decision.Probe, succeeded: false, T0.AddSeconds(3));
        Assert.Equal(T0.AddSeconds(3 + 4), health.Snapshot(Endpoint).HeldUntil);

        // The next probe succeeds: open again, the backlog drains.
        Assert.Equal(EndpointHealth.Decision.Probe, health.Admit(Endpoint, T0.AddSeconds(7)));
        health.Report(Endpoint, EndpointHealth.Decision.Probe, succeeded: true, T0.AddSeconds(7));
        Assert.Equal(EndpointHealth.Decision.Send, health.Admit(Endpoint, T0.AddSeconds(7)));
        Assert.Empty(health.Blocked(T0.AddSeconds(7)));
        Assert.Equal((0, null), health.Snapshot(Endpoint));
    }

    [Fact]
    public void Holds_grow_with_failed_probes_to_five_minutes_at_most()
    {
        var health = new EndpointHealth(1, 10);
        var now = T0;
        health.Report(Endpoint, health.Admit(Endpoint, now), false, now);
        for (var i = 0; i < 30; i++)
        {
            now = health.Snapshot(Endpoint).HeldUntil!.Value;
            Assert.Equal(EndpointHealth.Decision.Probe, health.Admit(Endpoint, now));
            health.Report(Endpoint, EndpointHealth.Decision.Probe, false, now);
        }
        Assert.Equal(now + EndpointHealth.MaxHold, health.Snapshot(Endpoint).HeldUntil);
    }

    [Fact]
    public void Requests_already_in_flight_when_the_hold_starts_do_not_lengthen_it()
    {
        // Regression: 40 concurrent failures made the first hold 2 × 2^37 s (capped at five
        // minutes), so a receiver back after a blip waited minutes for its backlog.
        var health = new EndpointHealth(3, 100);
        for (var i = 0; i < 40; i++)
        {
            health.Admit(Endpoint, T0);
        }
        for (var i = 0; i < 40; i++)
        {
            health.Report(Endpoint, EndpointHealth.Decision.Send, false, T0);
        }
        Assert.Equal(T0.AddSeconds(2), health.Snapshot(Endpoint).HeldUntil);
    }

    [Fact]
    public void One_endpoint_holds_at_most_its_share_of_requests_in_flight()
    {
        var health = new EndpointHealth(5, maxInFlightPerEndpoint: 2);
        Assert.Equal(EndpointHealth.Decision.Send, health.Admit(Endpoint, T0));
        Assert.Equal(EndpointHealth.Decision.Send, health.Admit(Endpoint, T0));
        Assert.Equal(EndpointHealth.Decision.Wait, health.Admit(Endpoint, T0));
        Assert.Equal(EndpointHealth.Decision.Send, health.Admit("http://127.0.0.1:9001", T0));
        Assert.Equal([Endpoint], health.Blocked(T0));
        health.Abandon(Endpoint, EndpointHealth.Decision.Send);
        Assert.Equal(EndpointHealth.Decision.Send, health.Admit(Endpoint, T0));
    }
}

public sealed class SecretMaskingTests
{
    [Fact]
    public void Credentials_in_headers_query_form_and_json_are_masked_and_the_rest_kept()
    {
        var request = new RenderedRequest(
            "POST",
            "https://crm.example.com/in?list_id=400&api_key=abc123&token=t0k",
            [new("Authorization", "Bearer xyz"), new("X-Api-Key", "k"), new("Content-Type", "application/json"), new("X-List", "400")],
            """{"first_name":"Jane","password":"hunter2","secretCode":"s"}""");

        var masked = SecretMasking.MaskRequest(request);

        Assert.Equal("https://crm.example.com/in?list_id=400&api_key=********&token=********", masked.Url);
        Assert.Equal(
            [new("Authorization", "********"), new("X-Api-Key", "********"), new("Content-Type", "application/json"), new("X-List", "400")],
            masked.Headers);
        Assert.Equal("""{"first_name":"Jane","password":"********","secretCode":"********"}""", masked.Body);
    }

    [Theory]
    [InlineData("access_key")]
    [InlineData("privateKey")]
    [InlineData("Ocp-Apim-Subscription-Key")]
    [InlineData("x-functions-key")]
    [InlineData("passphrase")]
    public void Any_name_with_key_in_it_was_stored_in_clear(string name)
    {
        var masked = SecretMasking.MaskRequest(new RenderedRequest("GET", $"https://x.example/p?{name}=s3cr3t", [new(name, "s3cr3t")], null));
        Assert.DoesNotContain("s3cr3t", masked.Url + string.Join(",", masked.Headers));
    }

    [Fact]
    public void A_rendered_json_body_without_credentials_is_kept_byte_for_byte_and_only_top_level_names_count()
    {
        var profile = new ExportProfile
        {
            Name = "json",
            PostbackUrl = "https://x.example/p",
            Mappings = [new("header:Content-Type", null, "application/json"), new("name", "firstName"), new("note", null, "José ✓ \"quoted\" <b>")],
        };
        var order = OrderParser.Parse(System.Text.Json.JsonDocument.Parse("""{"orderId": 1, "firstName": "Zoë"}""").RootElement).Order!;
        var rendered = RequestRenderer.Render(profile.PostbackUrl, profile.Mappings, order, new RenderContext("new_sale"));
        Assert.Equal(rendered.Body, SecretMasking.MaskRequest(rendered).Body);

        var nested = new RenderedRequest("POST", "https://x.example/p", [new("Content-Type", "application/json")], """{"a":{"password":"p"},"b":"1"}""");
        Assert.Equal(nested.Body, SecretMasking.MaskRequest(nested).Body);
        var notJson = new RenderedRequest("POST", "https://x.example/p", [new("Content-Type", "application/json")], "token=t");
        Assert.Equal("token=t", SecretMasking.MaskRequest(notJson).Body);
    }

    [Fact]
    public void Form_bodies_are_masked_by_parameter_name()
    {
        var request = new RenderedRequest("POST", "https://x.example/p", [new("X-Token", "t")], "user=jane&pass=hunter2&list=1");
        Assert.Equal("user=jane&pass=********&list=1", SecretMasking.MaskRequest(request).Body);
    }
}
