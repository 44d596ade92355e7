using System.Text.Json.Nodes;
using Postback.Tests.Support;

namespace Postback.Tests.Deliveries;

/// The delivery engine end to end: the real hub dispatching to real receivers on 127.0.0.1.
public sealed class DeliveryEngineTests : IAsyncLifetime
{
    private static readonly Dictionary<string, string?> FastRetries = new()
    {
        ["Postback:Delivery:FirstRetrySeconds"] = "0.05",
        ["Postback:Delivery:PollMilliseconds"] = "50",
        ["Postback:Delivery:FailureThreshold"] = "3",
    };

    private HubFactory _hub = null!;
    private HttpClient _api = null!;
    private readonly List<Receiver> _receivers = [];
    private static long _nextOrder = 10_000;

    public async Task InitializeAsync()
    {
        _hub = await HubFactory.StartAsync(dispatch: true, settings: FastRetries);
        _api = _hub.Api();
    }

    public async Task DisposeAsync()
    {
        _api.Dispose();
        await _hub.DisposeAsync();
        foreach (var receiver in _receivers)
        {
            await receiver.DisposeAsync();
        }
    }

    private async Task<Receiver> ReceiverAsync()
    {
        var receiver = await Receiver.StartAsync();
        _receivers.Add(receiver);
        return receiver;
    }

    private async Task<long> ProfileAsync(string url, object[]? mappings = null, int delay = 0, int? giveUpAfterHours = null, string type = "new_sale")
    {
        var response = await _api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "engine " + url,
            postbackUrl = url,
            exportDelayMinutes = delay,
            giveUpAfterHours,
            mappings = mappings ?? [new { exportName = "order_id", field = "orderId" }, new { exportName = "customer_type", field = "customerType" }],
            routes = new[] { new { customerTypes = new[] { type } } },
        });
        Assert.Equal(201, (int)response.StatusCode);
        return (await Json.ReadAsync(response))["id"]!.GetValue<long>();
    }

    private async Task<(long OrderId, JsonArray Deliveries)> EventAsync(string type = "new_sale", string? customerId = null)
    {
        var orderId = Interlocked.Increment(ref _nextOrder);
        var response = await _api.PostJsonAsync("/api/v1/events", new { type, order = new { orderId, customerId = customerId ?? $"C{orderId}", firstName = "Jane" } });
        Assert.Equal(202, (int)response.StatusCode);
        return (orderId, (await Json.ReadAsync(response))["deliveries"]!.AsArray());
    }

    private async Task<JsonNode> DeliveryAsync(long id) => await Json.ReadAsync(await _api.GetAsync($"/api/v1/deliveries/{id}"));

    private static Task Eventually(Func<Task<bool>> condition, string what, int seconds = 30) =>
        DeliveryScenario.WaitUntilAsync(condition, TimeSpan.FromSeconds(seconds), () => $"timed out waiting until {what}", 25);

    private async Task<JsonNode> SettledAsync(long id, string status)
    {
        JsonNode? detail = null;
        await Eventually(async () => (detail = await DeliveryAsync(id))["delivery"]!["status"]!.GetValue<string>() == status, $"delivery {id} is {status}");
        return detail!;
    }

    [Fact]
    public async Task An_event_is_delivered_with_stable_id_headers_and_leaves_its_attempt_and_history()
    {
        var receiver = await ReceiverAsync();
        var profileId = await ProfileAsync(receiver.Url("/hook"));
        var (orderId, deliveries) = await EventAsync(customerId: "CUST-1");
        var delivery = Assert.Single(deliveries)!;
        var id = delivery["id"]!.GetValue<long>();
        Assert.Equal(profileId, delivery["profileId"]!.GetValue<long>());
        Assert.Equal("pending", delivery["status"]!.GetValue<string>());

        var detail = await SettledAsync(id, "succeeded");
        var arrived = Assert.Single(receiver.Received);
        Assert.Equal($"?order_id={orderId}&customer_type=new_sale", arrived.RawQuery);
        Assert.Equal(id.ToString(System.Globalization.CultureInfo.InvariantCulture), arrived.Header("X-Postback-Delivery-Id"));
        Assert.Equal($"dlv_{id}", arrived.Header("webhook-id"));

        var attempt = Assert.Single(detail["attempts"]!.AsArray())!;
        Assert.True(attempt["succeeded"]!.GetValue<bool>());
        Assert.Equal("GET", attempt["request"]!["method"]!.GetValue<string>());
        Assert.Equal(receiver.Url("/hook") + $"?order_id={orderId}&customer_type=new_sale", attempt["request"]!["url"]!.GetValue<string>());
        Assert.Equal(200, attempt["response"]!["status"]!.GetValue<int>());
        Assert.Equal("OK", attempt["response"]!["bodyExcerpt"]!.GetValue<string>());

        var history = (await Json.ReadAsync(await _api.GetAsync("/api/v1/customers/CUST-1/history"))).AsArray();
        var entry = Assert.Single(history)!;
        Assert.Equal("export", entry["kind"]!.GetValue<string>());
        Assert.Equal("succeeded", entry["status"]!.GetValue<string>());
        Assert.Equal("new_sale", entry["customerType"]!.GetValue<string>());
        Assert.Equal(profileId, entry["profileId"]!.GetValue<long>());
        Assert.Equal($"/api/v1/deliveries/{id}", entry["link"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_receiver_failing_three_times_then_succeeding_gets_it_on_the_fourth_attempt()
    {
        var receiver = await ReceiverAsync();
        var calls = 0;
        receiver.Respond = _ => Interlocked.Increment(ref calls) <= 3 ? (500, "down for maintenance") : (200, "OK");
        await ProfileAsync(receiver.Url("/flaky"));
        var (_, deliveries) = await EventAsync();

        var detail = await SettledAsync(deliveries[0]!["id"]!.GetValue<long>(), "succeeded");
        var attempts = detail["attempts"]!.AsArray();
        Assert.Equal(4, attempts.Count);
        Assert.Equal([500, 500, 500, 200], attempts.Select(a => a!["response"]!["status"]!.GetValue<int>()));
        Assert.Equal("down for maintenance", attempts[0]!["response"]!["bodyExcerpt"]!.GetValue<string>());
        Assert.Equal(4, receiver.Received.Count);
        // Every attempt carries the same delivery id, so the receiver can drop repeats.
        Assert.Single(receiver.Received.Select(r => r.Header("webhook-id")).Distinct());
    }

    [Fact]
    public async Task A_receiver_that_hangs_times_out_and_is_retried()
    {
        var receiver = await ReceiverAsync();
        receiver.Delay = TimeSpan.FromSeconds(30);
        await ProfileAsync(receiver.Url("/slow"));
        var (_, deliveries) = await EventAsync();
        var id = deliveries[0]!["id"]!.GetValue<long>();

        await Eventually(async () => (await DeliveryAsync(id))["attempts"]!.AsArray().Count >= 1, "the first attempt timed out");
        receiver.Delay = TimeSpan.Zero;
        var detail = await SettledAsync(id, "succeeded");
        var first = detail["attempts"]![0]!;
        Assert.False(first["succeeded"]!.GetValue<bool>());
        Assert.Null(first["response"]);
        Assert.Contains("timed out", first["error"]!.GetValue<string>());
    }

    [Fact]
    public async Task Retry_After_sets_the_next_due_time()
    {
        var receiver = await ReceiverAsync();
        receiver.Respond = _ => (503, "busy");
        receiver.RetryAfter = "120";
        await ProfileAsync(receiver.Url("/busy"));
        var (_, deliveries) = await EventAsync();
        var id = deliveries[0]!["id"]!.GetValue<long>();

        await Eventually(async () => (await DeliveryAsync(id))["delivery"]!["attempts"]!.GetValue<int>() == 1, "the first attempt is recorded");
        var delivery = (await DeliveryAsync(id))["delivery"]!;
        var wait = delivery["dueAt"]!.GetValue<DateTimeOffset>() - delivery["lastAttemptAt"]!.GetValue<DateTimeOffset>();
        Assert.InRange(wait.TotalSeconds, 119, 125);
        Assert.Equal("pending", delivery["status"]!.GetValue<string>());
        Assert.Equal(503, delivery["lastStatusCode"]!.GetValue<int>());
        Assert.Single(receiver.Received);
    }

    [Fact]
    public async Task A_dead_receiver_is_held_back_and_does_not_stop_a_healthy_one()
    {
        var dead = await ReceiverAsync();
        var deadUrl = dead.Url("/dead");
        dead.Respond = _ => (500, "dead");
        var healthy = await ReceiverAsync();
        await ProfileAsync(deadUrl);
        await ProfileAsync(healthy.Url("/alive"));

        var ids = new List<long>();
        for (var i = 0; i < 40; i++)
        {
            var (_, deliveries) = await EventAsync();
            Assert.Equal(2, deliveries.Count);
            ids.Add(deliveries[1]!["id"]!.GetValue<long>());
        }
        await Eventually(() => Task.FromResult(healthy.Received.Count >= 40), "the healthy receiver has all 40");
        foreach (var id in ids)
        {
            await SettledAsync(id, "succeeded");
        }

        // The dead one was not hammered: after the threshold its deliveries waited together
        // and only probes went out, so it saw far fewer requests than 40 deliveries × retries.
        // Ten more events: the healthy receiver gets its ten, while the held-back endpoint sees
        // at most a probe or so of the ten due to it at the same moment.
        var seen = dead.Received.Count;
        for (var i = 0; i < 10; i++)
        {
            await EventAsync();
        }
        await Eventually(() => Task.FromResult(healthy.Received.Count >= 50), "the healthy receiver has all 50");
        Assert.True(dead.Received.Count - seen <= 3, $"the held-back endpoint got {dead.Received.Count - seen} requests while ten more were due to it");

        // It recovers: the backlog drains.
        dead.Respond = _ => (200, "OK");
        await Eventually(async () =>
        {
            var page = await Json.ReadAsync(await _api.GetAsync("/api/v1/deliveries?status=pending&limit=500"));
            return page["items"]!.AsArray().Count == 0;
        }, "the dead receiver's backlog drained", seconds: 60);
    }

    [Fact]
    public async Task A_profile_with_a_signing_secret_sends_Standard_Webhooks_signatures_a_receiver_can_verify()
    {
        var receiver = await ReceiverAsync();
        var secretKey = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
        var secret = "whsec_" + Convert.ToBase64String(secretKey);
        var response = await _api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "signed",
            postbackUrl = receiver.Url("/signed"),
            signingSecret = secret,
            mappings = new object[]
            {
                new { exportName = "header:Content-Type", @static = "application/json" },
                new { exportName = "order_id", field = "orderId" },
            },
            routes = new[] { new { customerTypes = new[] { "upsell" } } },
        });
        Assert.Equal(201, (int)response.StatusCode);
        Assert.Equal(secret, (await Json.ReadAsync(response))["signingSecret"]!.GetValue<string>());

        var (orderId, deliveries) = await EventAsync("upsell");
        var id = deliveries[0]!["id"]!.GetValue<long>();
        await SettledAsync(id, "succeeded");

        // Verified here independently of the hub's code, as the specification says a receiver does.
        var arrived = Assert.Single(receiver.Received);
        var webhookId = arrived.Header("webhook-id");
        var timestamp = arrived.Header("webhook-timestamp");
        Assert.Equal($"dlv_{id}", webhookId);
        Assert.InRange(long.Parse(timestamp!, System.Globalization.CultureInfo.InvariantCulture),
            DateTimeOffset.UtcNow.AddMinutes(-5).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        Assert.Equal($"{{\"order_id\":\"{orderId}\"}}", arrived.BodyText);
        var expected = "v1," + Convert.ToBase64String(System.Security.Cryptography.HMACSHA256.HashData(
            secretKey, System.Text.Encoding.UTF8.GetBytes($"{webhookId}.{timestamp}.{arrived.BodyText}")));
        Assert.Equal(expected, arrived.Header("webhook-signature"));
    }

    [Fact]
    public async Task Secrets_are_masked_in_the_attempt_log_but_sent_for_real()
    {
        var receiver = await ReceiverAsync();
        await ProfileAsync(receiver.Url("/secret"),
        [
            new { exportName = "header:X-Api-Key", @static = "sk_live_123" },
            new { exportName = "password", @static = "hunter2" },
            new { exportName = "order_id", field = "orderId" },
        ]);
        var (orderId, deliveries) = await EventAsync();
        var detail = await SettledAsync(deliveries[0]!["id"]!.GetValue<long>(), "succeeded");

        var arrived = Assert.Single(receiver.Received);
        Assert.Equal("sk_live_123", arrived.Header("X-Api-Key"));
        Assert.Equal($"password=hunter2&order_id={orderId}", arrived.BodyText);

        var request = detail["attempts"]![0]!["request"]!;
        Assert.DoesNotContain("sk_live_123", request.ToJsonString());
        Assert.DoesNotContain("hunter2", request.ToJsonString());
        Assert.Equal($"password=********&order_id={orderId}", request["body"]!.GetValue<string>());
    }

    [Fact]
    public async Task Operators_list_retry_replay_and_cancel_deliveries()
    {
        var receiver = await ReceiverAsync();
        var profileId = await ProfileAsync(receiver.Url("/ops"));
        var (orderId, first) = await EventAsync();
        var firstId = first[0]!["id"]!.GetValue<long>();
        await SettledAsync(firstId, "succeeded");

        var byOrder = await Json.ReadAsync(await _api.GetAsync($"/api/v1/deliveries?orderId={orderId}"));
        Assert.Equal(firstId, Assert.Single(byOrder["items"]!.AsArray())!["id"]!.GetValue<long>());

        // Retry one now: it is sent again, with the same id.
        Assert.Equal(200, (int)(await _api.PostAsync($"/api/v1/deliveries/{firstId}/retry", null)).StatusCode);
        await Eventually(() => Task.FromResult(receiver.Received.Count == 2), "the retried delivery arrived");
        Assert.Equal(2, (await SettledAsync(firstId, "succeeded"))["attempts"]!.AsArray().Count);

        // Replay by profile and status.
        var replayed = await Json.ReadAsync(await _api.PostJsonAsync("/api/v1/deliveries/replay", new { profileId, status = "succeeded" }));
        Assert.Equal(1, replayed["count"]!.GetValue<int>());
        await Eventually(() => Task.FromResult(receiver.Received.Count == 3), "the replayed delivery arrived");

        // A delayed profile's pending deliveries can be cancelled, one or many.
        var later = await ProfileAsync(receiver.Url("/later"), delay: 60, type: "cancel");
        var (_, a) = await EventAsync("cancel");
        var (_, b) = await EventAsync("cancel");
        var cancelOne = await Json.ReadAsync(await _api.PostAsync($"/api/v1/deliveries/{a[0]!["id"]}/cancel", null));
        Assert.Equal("cancelled", cancelOne["status"]!.GetValue<string>());
        var cancelled = await Json.ReadAsync(await _api.PostJsonAsync("/api/v1/deliveries/cancel", new { profileId = later }));
        Assert.Equal(1, cancelled["count"]!.GetValue<int>());
        Assert.Equal("cancelled", (await DeliveryAsync(b[0]!["id"]!.GetValue<long>()))["delivery"]!["status"]!.GetValue<string>());
        await Json.AssertProblemAsync(await _api.PostAsync($"/api/v1/deliveries/{firstId}/cancel", null), 409, "id");
        await Json.AssertProblemAsync(await _api.GetAsync("/api/v1/deliveries?status=lost"), 400, "status");
    }

    [Fact]
    public async Task Deleting_a_profile_cancels_its_pending_deliveries()
    {
        var receiver = await ReceiverAsync();
        var profileId = await ProfileAsync(receiver.Url("/gone"), delay: 30, type: "refund");
        var (_, deliveries) = await EventAsync("refund");
        Assert.Equal(204, (int)(await _api.DeleteAsync($"/api/v1/export-profiles/{profileId}")).StatusCode);

        var delivery = (await DeliveryAsync(deliveries[0]!["id"]!.GetValue<long>()))["delivery"]!;
        Assert.Equal("cancelled", delivery["status"]!.GetValue<string>());
        Assert.Equal("the export profile was deleted", delivery["lastError"]!.GetValue<string>());
    }

    [Fact]
    public async Task Another_organizations_deliveries_are_not_found()
    {
        var receiver = await ReceiverAsync();
        await ProfileAsync(receiver.Url("/mine"), type: "chargeback");
        var (_, deliveries) = await EventAsync("chargeback", customerId: "CUST-MINE");
        var id = deliveries[0]!["id"]!.GetValue<long>();
        var (_, key) = await _hub.CreateOrganizationAsync("Other", 9191);
        using var other = _hub.Api(key);

        Assert.Equal(404, (int)(await other.GetAsync($"/api/v1/deliveries/{id}")).StatusCode);
        Assert.Equal(404, (int)(await other.PostAsync($"/api/v1/deliveries/{id}/retry", null)).StatusCode);
        Assert.Empty((await Json.ReadAsync(await other.GetAsync("/api/v1/deliveries")))["items"]!.AsArray());
        Assert.Empty((await Json.ReadAsync(await other.GetAsync("/api/v1/customers/CUST-MINE/history"))).AsArray());
        Assert.Equal(0, (await Json.ReadAsync(await other.PostJsonAsync("/api/v1/deliveries/replay", new { })))["count"]!.GetValue<int>());
    }
}
