using Postback.Tests.Support;
using static Postback.Tests.Support.DeliveryScenario;

namespace Postback.Tests.Hardening;

/// Issue 12, finding 7: a replay with the default filter must not send again what a receiver
/// already took.
public sealed class ReplayTests
{
    [Fact]
    public async Task Replay_covers_failed_and_cancelled_unless_succeeded_is_named_and_says_how_many()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var hub = await HubFactory.StartAsync(dispatch: true);
        using var api = hub.Api();
        await CreateProfileAsync(api, receiver.Url("/now"), "now");
        var sent = await PostBatchAsync(api, "replay", 730_000, 2);
        await WaitUntilAsync(async () => (await ListDeliveriesAsync(api, "succeeded")).Count == 2, TimeSpan.FromSeconds(60), () => "both delivered");

        // One more, of a delayed profile, cancelled while it waits.
        var later = await api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "later", postbackUrl = receiver.Url("/later"), exportDelayMinutes = 60,
            mappings = new[] { new { exportName = "order_id", field = "orderId" } },
            routes = new[] { new { customerTypes = new[] { "partial" } } },
        });
        Assert.Equal(201, (int)later.StatusCode);
        var partial = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/events", new { type = "partial", order = new { orderId = 731_000 } }), System.Net.HttpStatusCode.Accepted);
        var waiting = partial["deliveries"]![0]!["id"]!.GetValue<long>();
        await Json.ReadOkAsync(await api.PostAsync($"/api/v1/deliveries/{waiting}/cancel", null));
        const int succeeded = 2, replayable = 1;

        var preview = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/deliveries/replay/preview", new { }));
        Assert.Equal(replayable, preview["count"]!.GetValue<int>());
        Assert.Equal(0, preview["alreadySucceeded"]!.GetValue<int>());
        var named = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/deliveries/replay/preview", new { status = "succeeded" }));
        Assert.Equal(succeeded, named["count"]!.GetValue<int>());
        Assert.Equal(succeeded, named["alreadySucceeded"]!.GetValue<int>());

        var before = receiver.Received.Count;
        var replayed = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/deliveries/replay", new { }));
        Assert.Equal(replayable, replayed["count"]!.GetValue<int>());
        foreach (var id in sent)
        {
            var delivery = (await Json.ReadOkAsync(await api.GetAsync($"/api/v1/deliveries/{id}")))["delivery"]!;
            Assert.Equal("succeeded", delivery["status"]!.GetValue<string>());
            Assert.Equal(1, delivery["attempts"]!.GetValue<int>());
        }
        // Proof the replay ran: the cancelled one arrives; the succeeded ones never again.
        await WaitUntilAsync(() => receiver.Received.Count == before + replayable, TimeSpan.FromSeconds(60), () => $"received {receiver.Received.Count}");
        await WaitUntilAsync(async () => (await ListDeliveriesAsync(api, "succeeded")).Count == 3, TimeSpan.FromSeconds(60), () => "all delivered");
        Assert.Equal(2, ReceivedIds(receiver).Count(id => sent.Contains(id)));
    }
}
