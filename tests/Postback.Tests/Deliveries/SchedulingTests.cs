using System.Text.Json;
using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.Orders;
using Postback.Storage;

namespace Postback.Tests.Deliveries;

/// Scheduling as a pure function: enabled profiles + event + order → which profiles fire, with
/// which customer type, and when.
public sealed class SchedulingTests
{
    private static readonly DateTimeOffset Occurred = new(2026, 11, 22, 12, 0, 0, TimeSpan.Zero);

    private static ExportProfile P(long id, string[] types, int delay = 0, bool enabled = true, string[]? campaigns = null, string[]? products = null) => new()
    {
        Id = id, Name = "p" + id, PostbackUrl = "https://example.com/" + id, ExportDelayMinutes = delay, Enabled = enabled,
        Routes = [new ExportRoute(types, campaigns, products)],
    };

    private static ExportProfile Routed(long id, params ExportRoute[] routes) => new()
    {
        Id = id, Name = "p" + id, PostbackUrl = "https://example.com/" + id, Enabled = true, Routes = [.. routes],
    };

    private static OrderData Order(string json) =>
        OrderParser.Parse(JsonDocument.Parse(json).RootElement).Order ?? throw new InvalidOperationException("bad test order");

    private static readonly OrderData Sale = Order("""{"orderId": 1, "campaignId": "259", "items": [{"productId": "12", "sku": "A"}]}""");
    private static readonly OrderData NoItems = Order("""{"orderId": 2, "campaignId": "259"}""");
    private static readonly OrderData TestCard = Order("""{"orderId": 3, "campaignId": "259", "isTestCard": true, "items": [{"productId": "12"}]}""");

    // Each row: profiles, event type, order, products the catalog calls recurring → (profile id, customer type, minutes after the event) fired.
    public static TheoryData<ExportProfile[], string, OrderData, string[], (long, string, int)[]> Cases => new()
    {
        { [], "new_sale", Sale, [], [] },
        { [P(1, ["new_sale"])], "new_sale", Sale, [], [(1, "new_sale", 0)] },
        { [P(1, ["new_sale"], delay: 5)], "new_sale", Sale, [], [(1, "new_sale", 5)] },
        // A disabled profile never fires.
        { [P(1, ["new_sale"], enabled: false), P(2, ["new_sale"], delay: 1)], "new_sale", Sale, [], [(2, "new_sale", 1)] },
        // Only the matching profiles, in the order given.
        { [P(3, ["decline"]), P(1, ["new_sale"], delay: 10), P(2, ["new_sale", "upsell"])], "new_sale", Sale, [], [(1, "new_sale", 10), (2, "new_sale", 0)] },
        // Campaign and product filters.
        { [P(1, ["new_sale"], campaigns: ["300"]), P(2, ["new_sale"], campaigns: ["259"])], "new_sale", Sale, [], [(2, "new_sale", 0)] },
        { [P(1, ["new_sale"], products: ["99"]), P(2, ["new_sale"], products: ["12"])], "new_sale", Sale, [], [(2, "new_sale", 0)] },
        // A partial with products is an abandoned cart; without, a lead.
        { [P(1, ["abandoned_cart"]), P(2, ["lead"])], "partial", Sale, [], [(1, "abandoned_cart", 0)] },
        { [P(1, ["abandoned_cart"]), P(2, ["lead"])], "partial", NoItems, [], [(2, "lead", 0)] },
        // A sale of a product the catalog calls recurring starts a subscription.
        { [P(1, ["subscription_started"])], "new_sale", Sale, ["12"], [(1, "subscription_started", 0)] },
        { [P(1, ["subscription_started"])], "new_sale", Sale, [], [] },
        // Several routes: the first matching one decides, and a profile fires once.
        { [Routed(1, new ExportRoute(["new_sale"], ["300"], null), new ExportRoute(["new_sale"], null, null))], "new_sale", Sale, [], [(1, "new_sale", 0)] },
        { [Routed(1, new ExportRoute(["new_sale"], null, null), new ExportRoute(["new_sale", "upsell"], null, null))], "new_sale", Sale, [], [(1, "new_sale", 0)] },
        { [Routed(1, new ExportRoute(["upsell"], null, null), new ExportRoute(["decline"], null, null))], "new_sale", Sale, [], [] },
        // A full or partial refund answers to a route for refunds.
        { [P(1, ["refund"]), P(2, ["partial_refund"])], "full_refund", Sale, [], [(1, "refund", 0)] },
        // Test card orders never export.
        { [P(1, ["new_sale"])], "new_sale", TestCard, [], [] },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Enabled_matching_profiles_fire_with_their_customer_type_after_their_delay(
        ExportProfile[] profiles, string eventType, OrderData order, string[] recurring, (long, string, int)[] expected)
    {
        var scheduled = Scheduling.For(profiles, eventType, order, Occurred, recurring.Contains);
        Assert.Equal(expected, scheduled.Select(s => (s.Profile.Id, s.CustomerType, (int)(s.DueAt - Occurred).TotalMinutes)).ToArray());
    }
}
