using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;
using Postback.Tests.Support;

namespace Postback.Tests.Deliveries;

/// Coalescing within the export delay ("coalesce": true), on a hub whose clock is a
/// FakeTimeProvider: the delay is moved through, never slept through. Several events of one
/// order within the delay go out as one delivery at the first one's due time, carrying the
/// order as it is then and the latest event's customer type; the others are recorded as
/// coalesced into it. An event after that delivery went out gets a delivery of its own.
public sealed class CoalescingTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-03-02T10:00:00Z", CultureInfo.InvariantCulture));
    private HubFactory _hub = null!;
    private HttpClient _api = null!;
    private Receiver _receiver = null!;

    public async Task InitializeAsync()
    {
        _hub = await HubFactory.StartAsync(dispatch: true, time: _time, settings: new Dictionary<string, string?>
        {
            ["Postback:Delivery:PollMilliseconds"] = "50",
        });
        _api = _hub.Api();
        _receiver = await Receiver.StartAsync();
    }

    public async Task DisposeAsync()
    {
        _api.Dispose();
        await _hub.DisposeAsync();
        await _receiver.DisposeAsync();
    }

    private async Task<long> EventAsync(string type, string firstName)
    {
        var accepted = await Json.ReadOkAsync(await _api.PostJsonAsync("/api/v1/events",
            new { type, order = new { orderId = 660_001, firstName } }), System.Net.HttpStatusCode.Accepted);
        return accepted["deliveries"]![0]!["id"]!.GetValue<long>();
    }

    private async Task<JsonNode> DeliveryAsync(long id) => (await Json.ReadOkAsync(await _api.GetAsync($"/api/v1/deliveries/{id}")))["delivery"]!;

    [Fact]
    public async Task Events_within_the_delay_go_out_as_one_delivery_with_the_latest_customer_type()
    {
        await Json.ReadOkAsync(await _api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "coalescing",
            postbackUrl = _receiver.Url("/hook"),
            exportDelayMinutes = 5,
            coalesce = true,
            mappings = new[]
            {
                new { exportName = "order_id", field = "orderId" }, new { exportName = "type", field = "customerType" },
                new { exportName = "name", field = "firstName" },
            },
            routes = new[] { new { customerTypes = new[] { "partial", "new_sale", "upsell", "fulfillment_shipped" } } },
        }), System.Net.HttpStatusCode.Created);

        var first = await EventAsync("partial", "Jane");
        _time.Advance(TimeSpan.FromMinutes(1));
        var second = await EventAsync("new_sale", "Janet");
        _time.Advance(TimeSpan.FromMinutes(1));
        var third = await EventAsync("upsell", "Janine");

        // The first one's due time: one request, the order as it is now, the latest type.
        _time.Advance(TimeSpan.FromMinutes(3));
        await DeliveryScenario.WaitUntilAsync(async () => (await DeliveryAsync(first))["status"]!.GetValue<string>() == "succeeded",
            TimeSpan.FromSeconds(30), () => $"delivery {first} went out; the receiver saw {_receiver.Received.Count}");
        var sent = Assert.Single(_receiver.Received);
        Assert.Equal("?order_id=660001&type=upsell&name=Janine", sent.RawQuery);
        Assert.Equal("upsell", (await DeliveryAsync(first))["customerType"]!.GetValue<string>());
        foreach (var id in new[] { second, third })
        {
            var coalesced = await DeliveryAsync(id);
            Assert.Equal("coalesced", coalesced["status"]!.GetValue<string>());
            Assert.Equal(first, coalesced["coalescedInto"]!.GetValue<long>());
            Assert.Equal(0, coalesced["attempts"]!.GetValue<int>());
        }

        // An event after that delivery went out is not coalesced into it: it goes out at its
        // own due time, and by then the coalesced ones (due long before) would have gone too.
        _time.Advance(TimeSpan.FromMinutes(1));
        var fourth = await EventAsync("fulfillment_shipped", "Janine");
        _time.Advance(TimeSpan.FromMinutes(5));
        await DeliveryScenario.WaitUntilAsync(async () => (await DeliveryAsync(fourth))["status"]!.GetValue<string>() == "succeeded",
            TimeSpan.FromSeconds(30), () => $"delivery {fourth} went out; the receiver saw {_receiver.Received.Count}");
        Assert.Equal([first, fourth], DeliveryScenario.ReceivedIds(_receiver));
    }
}
