using System.Globalization;
using System.Text.Json.Nodes;
using Postback.Tests.Support;

namespace Postback.Tests.Deliveries;

/// Ordering per order ("ordering": "perOrder") against real receivers on 127.0.0.1: one order's
/// deliveries of a profile go out one at a time in the order of their events, whatever the
/// receiver answers; other orders are not held; a delivery that ends failed or cancelled lets
/// the next one go, and the next one says it waited, and for which.
public sealed class OrderingTests : IAsyncDisposable
{
    private static readonly Dictionary<string, string?> FastRetries = new()
    {
        ["Postback:Delivery:FirstRetrySeconds"] = "0.05",
        ["Postback:Delivery:PollMilliseconds"] = "50",
        // Three 500s in a row must not hold the endpoint back: these tests are about ordering.
        ["Postback:Delivery:FailureThreshold"] = "50",
    };

    private readonly List<IAsyncDisposable> _owned = [];
    private static long _nextOrder = 770_000;

    public async ValueTask DisposeAsync()
    {
        foreach (var owned in Enumerable.Reverse(_owned))
        {
            await owned.DisposeAsync();
        }
    }

    private async Task<(HttpClient Api, Receiver Receiver, long ProfileId)> StartAsync(StorageKind storage, string ordering = "perOrder")
    {
        var hub = await HubFactory.StartAsync(storage, dispatch: true, settings: FastRetries);
        _owned.Add(hub);
        var receiver = await Receiver.StartAsync();
        _owned.Add(receiver);
        var api = hub.Api();
        var created = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "in order",
            postbackUrl = receiver.Url("/hook"),
            ordering,
            mappings = new[] { new { exportName = "order_id", field = "orderId" }, new { exportName = "type", field = "customerType" } },
            routes = new[] { new { customerTypes = new[] { "new_sale", "upsell", "fulfillment_shipped" } } },
        }), System.Net.HttpStatusCode.Created);
        return (api, receiver, created["id"]!.GetValue<long>());
    }

    private static async Task<long> EventAsync(HttpClient api, long orderId, string type)
    {
        var accepted = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/events", new { type, order = new { orderId } }), System.Net.HttpStatusCode.Accepted);
        return accepted["deliveries"]![0]!["id"]!.GetValue<long>();
    }

    private static async Task<JsonNode> DeliveryAsync(HttpClient api, long id) =>
        (await Json.ReadOkAsync(await api.GetAsync($"/api/v1/deliveries/{id}")))["delivery"]!;

    private static async Task<JsonNode> SettledAsync(HttpClient api, long id, string status)
    {
        JsonNode? delivery = null;
        await DeliveryScenario.WaitUntilAsync(async () => (delivery = await DeliveryAsync(api, id))["status"]!.GetValue<string>() == status,
            TimeSpan.FromSeconds(30), () => $"delivery {id} is {status}: {delivery?.ToJsonString()}");
        return delivery!;
    }

    private static string OrderOf(ReceivedRequest r) => System.Web.HttpUtility.ParseQueryString(r.RawQuery)["order_id"]!;

    [Theory]
    [InlineData(StorageKind.Sqlite)]
    [InlineData(StorageKind.Postgres)]
    public async Task Three_events_of_one_order_arrive_in_order_when_the_first_is_answered_500_twice(StorageKind storage)
    {
        var (api, receiver, _) = await StartAsync(storage);
        var orderId = Interlocked.Increment(ref _nextOrder);
        var firstAnswers = 0;
        receiver.Respond = r => r.RawQuery.Contains("type=new_sale", StringComparison.Ordinal) && Interlocked.Increment(ref firstAnswers) <= 2
            ? (500, "not yet")
            : (200, "OK");

        // All three are stored before the first one's first attempt can have been answered.
        var ids = new List<long>();
        foreach (var type in new[] { "new_sale", "upsell", "fulfillment_shipped" })
        {
            ids.Add(await EventAsync(api, orderId, type));
        }
        foreach (var id in ids)
        {
            await SettledAsync(api, id, "succeeded");
        }

        var arrived = DeliveryScenario.ReceivedIds(receiver);
        Assert.Equal([ids[0], ids[0], ids[0], ids[1], ids[2]], arrived);
        Assert.Equal(["new_sale", "new_sale", "new_sale", "upsell", "fulfillment_shipped"],
            receiver.Received.Select(r => System.Web.HttpUtility.ParseQueryString(r.RawQuery)["type"]));
        var second = await DeliveryAsync(api, ids[1]);
        Assert.True(second["ordered"]!.GetValue<bool>());
        Assert.Equal(ids[0], second["waitedFor"]!.GetValue<long>());
    }

    [Fact]
    public async Task A_second_order_is_not_delayed_by_the_first()
    {
        var (api, receiver, _) = await StartAsync(StorageKind.Sqlite);
        var stuck = Interlocked.Increment(ref _nextOrder);
        var other = Interlocked.Increment(ref _nextOrder);
        var stuckText = stuck.ToString(CultureInfo.InvariantCulture);
        var release = false;
        receiver.Respond = r => OrderOf(r) == stuckText && !Volatile.Read(ref release) ? (500, "stuck") : (200, "OK");

        var stuckFirst = await EventAsync(api, stuck, "new_sale");
        var stuckSecond = await EventAsync(api, stuck, "upsell");
        // The stuck order's first delivery has failed at least twice before the other order's
        // events come in: it is retrying, and its second one waits.
        await DeliveryScenario.WaitUntilAsync(() => receiver.Received.Count(r => OrderOf(r) == stuckText) >= 2, TimeSpan.FromSeconds(30),
            () => "the stuck order's first delivery was tried twice");

        var otherIds = new List<long>();
        foreach (var type in new[] { "new_sale", "upsell", "fulfillment_shipped" })
        {
            otherIds.Add(await EventAsync(api, other, type));
        }
        foreach (var id in otherIds)
        {
            await SettledAsync(api, id, "succeeded");
        }
        // The other order went through while the stuck one was still at its first delivery.
        Assert.Equal("pending", (await DeliveryAsync(api, stuckFirst))["status"]!.GetValue<string>());
        Assert.Equal("pending", (await DeliveryAsync(api, stuckSecond))["status"]!.GetValue<string>());
        Assert.DoesNotContain(stuckSecond, DeliveryScenario.ReceivedIds(receiver));
        Assert.Equal(otherIds, DeliveryScenario.ReceivedIds(receiver).Where(otherIds.Contains));

        Volatile.Write(ref release, true);
        await SettledAsync(api, stuckFirst, "succeeded");
        await SettledAsync(api, stuckSecond, "succeeded");
        Assert.Equal(stuckSecond, DeliveryScenario.ReceivedIds(receiver).Last(id => id == stuckFirst || id == stuckSecond));
    }

    [Fact]
    public async Task When_the_earlier_delivery_is_cancelled_the_next_goes_out_and_says_it_waited_for_it()
    {
        var (api, receiver, _) = await StartAsync(StorageKind.Sqlite);
        var orderId = Interlocked.Increment(ref _nextOrder);
        var orderText = orderId.ToString(CultureInfo.InvariantCulture);
        receiver.Respond = r => r.RawQuery.Contains("type=new_sale", StringComparison.Ordinal) ? (500, "never") : (200, "OK");
        var first = await EventAsync(api, orderId, "new_sale");
        var second = await EventAsync(api, orderId, "upsell");
        await DeliveryScenario.WaitUntilAsync(() => receiver.Received.Count(r => OrderOf(r) == orderText) >= 2, TimeSpan.FromSeconds(30),
            () => "the first delivery was tried twice");

        var cancel = await CancelWhenIdleAsync(api, first);
        Assert.Equal("cancelled", cancel["status"]!.GetValue<string>());
        var sent = await SettledAsync(api, second, "succeeded");
        Assert.Equal(first, sent["waitedFor"]!.GetValue<long>());
        var arrived = DeliveryScenario.ReceivedIds(receiver);
        Assert.Equal(arrived.Count - 1, arrived.IndexOf(second));
        Assert.All(arrived.SkipLast(1), id => Assert.Equal(first, id));
    }

    [Fact]
    public async Task An_earlier_delivery_is_not_retried_while_a_later_one_is_pending()
    {
        var (api, receiver, _) = await StartAsync(StorageKind.Sqlite);
        var orderId = Interlocked.Increment(ref _nextOrder);
        receiver.Respond = r => r.RawQuery.Contains("type=new_sale", StringComparison.Ordinal) ? (500, "no") : (200, "OK");
        var first = await EventAsync(api, orderId, "new_sale");
        var later = await EventAsync(api, orderId, "upsell");
        await CancelWhenIdleAsync(api, first);
        await SettledAsync(api, later, "succeeded");
        // A third event's delivery fails and keeps retrying: a later delivery of the order is
        // pending, so sending the first one again now would put it out of order.
        receiver.Respond = r => r.RawQuery.Contains("type=fulfillment_shipped", StringComparison.Ordinal) ? (500, "later one fails") : (200, "OK");
        var third = await EventAsync(api, orderId, "fulfillment_shipped");
        await DeliveryScenario.WaitUntilAsync(async () => (await DeliveryAsync(api, third))["attempts"]!.GetValue<int>() >= 1, TimeSpan.FromSeconds(30),
            () => "the third delivery was tried");

        var refused = await api.PostAsync($"/api/v1/deliveries/{first}/retry", null);
        var reason = await Json.AssertProblemAsync(refused, 409, "id");
        Assert.Contains("later delivery", reason);
        Assert.Equal("cancelled", (await DeliveryAsync(api, first))["status"]!.GetValue<string>());
    }

    // Cancels a pending delivery between two attempts (a cancel is refused while it is in flight).
    private static async Task<JsonNode> CancelWhenIdleAsync(HttpClient api, long id)
    {
        JsonNode? result = null;
        await DeliveryScenario.WaitUntilAsync(async () =>
        {
            var response = await api.PostAsync($"/api/v1/deliveries/{id}/cancel", null);
            if (!response.IsSuccessStatusCode)
            {
                return false;
            }
            result = await Json.ReadAsync(response);
            return true;
        }, TimeSpan.FromSeconds(30), () => $"delivery {id} could be cancelled", pollMilliseconds: 20);
        return result!;
    }
}
