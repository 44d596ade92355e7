using Postback.Tests.Support;

namespace Postback.Tests.Deliveries;

/// Deliveries due at once go from the ingest straight to the worker in the same process (the
/// hand-over), rendered with what the ingest read: the order as stored, the profile it was
/// routed by and the campaign's name.
public sealed class HandedOverDeliveryTests
{
    [Theory]
    [InlineData(StorageKind.Sqlite)]
    [InlineData(StorageKind.Postgres)]
    public async Task A_delivery_sent_at_once_names_its_orders_campaign_also_when_only_the_stored_order_carries_it(StorageKind storage)
    {
        await using var receiver = await Receiver.StartAsync();
        await using var hub = await HubFactory.StartAsync(storage, dispatch: true);
        using var api = hub.Api();
        var campaign = await api.PostJsonAsync("/api/v1/campaigns", new { campaignId = "259", name = "Summer" });
        Assert.Equal(201, (int)campaign.StatusCode);
        var profile = await api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "campaigns",
            postbackUrl = receiver.Url("/hook"),
            exportDelayMinutes = 0,
            mappings = new[] { new { exportName = "order_id", field = "orderId" }, new { exportName = "campaign", field = "campaignName" } },
            routes = new[] { new { customerTypes = new[] { "new_sale" } } },
        });
        Assert.Equal(201, (int)profile.StatusCode);

        // The first event names the campaign; the second does not, and its order as merged does.
        object[] orders = [new { orderId = 4401, campaignId = "259" }, new { orderId = 4401, firstName = "Jane" }];
        for (var i = 0; i < orders.Length; i++)
        {
            var posted = await api.PostJsonAsync("/api/v1/events", new { eventId = $"evt-campaign-{i}", type = "new_sale", order = orders[i] });
            Assert.Equal(202, (int)posted.StatusCode);
            var expected = i + 1;
            await DeliveryScenario.WaitUntilAsync(() => Task.FromResult(receiver.Received.Count >= expected), TimeSpan.FromSeconds(30),
                () => $"the receiver got {receiver.Received.Count} requests, expected {expected}", 25);
        }

        Assert.Equal(["order_id=4401&campaign=Summer", "order_id=4401&campaign=Summer"], receiver.Received.Select(r => r.RawQuery.TrimStart('?')));
    }
}
