using System.Text.Json;
using Postback.ExportProfiles;
using Postback.Orders;

namespace Postback.Tests.ExportProfiles;

/// RouteMatcher as a pure function: routes + event type + order facts → the customer type the
/// profile fires with (PRODUCT.md sections 2 and 3, seeds 001 and 003).
public sealed class RouteMatcherTests
{
    // Order facts: campaign 259, products p1 and p2, no recurring product, not a test card.
    private static RoutingFacts Facts(
        string? campaign = "259", string[]? products = null, bool recurring = false, bool testCard = false, bool? hasProducts = null)
    {
        products ??= ["p1", "p2"];
        return new RoutingFacts(campaign, products, hasProducts ?? products.Length > 0, recurring, testCard);
    }

    private static readonly RoutingFacts Sale = Facts();
    private static readonly RoutingFacts RecurringSale = Facts(recurring: true);
    private static readonly RoutingFacts NoProducts = Facts(products: []);
    private static readonly RoutingFacts NoCampaign = Facts(campaign: null);

    private static ExportRoute R(params string[] types) => new(types);

    private static ExportRoute R(string[] types, string[]? campaigns = null, string[]? products = null) => new(types, campaigns, products);

    public static TheoryData<ExportRoute[], string, RoutingFacts, string?> MatchCases => new()
    {
        // Exact customer type.
        { [R("new_sale")], "new_sale", Sale, "new_sale" },
        { [R("decline")], "decline", Sale, "decline" },
        { [R("chargeback")], "chargeback", Sale, "chargeback" },
        { [R("qa_pending")], "qa_pending", Sale, "qa_pending" },
        { [R("decline")], "new_sale", Sale, null },
        { [R("new_sale")], "upsell", Sale, null },
        { [R("upsell", "decline", "cancel")], "cancel", Sale, "cancel" },
        // Customer types are compared exactly (validation refuses other spellings).
        { [R("New_Sale")], "new_sale", Sale, null },

        // Partial: lead when the order has no products, abandoned_cart when it has some.
        { [R("partial")], "partial", Sale, "partial" },
        { [R("partial")], "partial", NoProducts, "partial" },
        { [R("lead")], "partial", NoProducts, "lead" },
        { [R("lead")], "partial", Sale, null },
        { [R("abandoned_cart")], "partial", Sale, "abandoned_cart" },
        { [R("abandoned_cart")], "partial", NoProducts, null },
        { [R("lead", "abandoned_cart")], "partial", Sale, "abandoned_cart" },
        { [R("lead", "abandoned_cart")], "partial", NoProducts, "lead" },
        // Items without a product id still count as products.
        { [R("abandoned_cart")], "partial", Facts(products: [], hasProducts: true), "abandoned_cart" },
        // The event's own type is the most specific.
        { [R("lead", "partial")], "partial", NoProducts, "partial" },
        { [R("abandoned_cart", "partial")], "partial", Sale, "partial" },
        // lead/abandoned_cart are derived from partial events only.
        { [R("lead")], "new_sale", NoProducts, null },
        { [R("abandoned_cart")], "decline", Sale, null },
        { [R("partial")], "lead", NoProducts, null },

        // Refunds: partial_refund and full_refund also match "all refunds".
        { [R("refund")], "refund", Sale, "refund" },
        { [R("refund")], "partial_refund", Sale, "refund" },
        { [R("refund")], "full_refund", Sale, "refund" },
        { [R("partial_refund")], "partial_refund", Sale, "partial_refund" },
        { [R("full_refund")], "full_refund", Sale, "full_refund" },
        { [R("partial_refund")], "full_refund", Sale, null },
        { [R("full_refund")], "partial_refund", Sale, null },
        { [R("partial_refund")], "refund", Sale, null },
        { [R("full_refund")], "refund", Sale, null },
        { [R("refund", "full_refund")], "full_refund", Sale, "full_refund" },
        { [R("refund", "partial_refund")], "partial_refund", Sale, "partial_refund" },
        { [R("refund")], "chargeback", Sale, null },

        // New sale with a recurring product also matches subscription_started.
        { [R("subscription_started")], "new_sale", RecurringSale, "subscription_started" },
        { [R("subscription_started")], "new_sale", Sale, null },
        { [R("subscription_started")], "new_sale", NoProducts, null },
        { [R("new_sale")], "new_sale", RecurringSale, "new_sale" },
        { [R("new_sale", "subscription_started")], "new_sale", RecurringSale, "new_sale" },
        { [R("subscription_started", "new_sale")], "new_sale", RecurringSale, "new_sale" },
        { [R("subscription_started")], "upsell", RecurringSale, null },
        { [R("subscription_started")], "recurring_order", RecurringSale, null },

        // Campaign filter: empty = all.
        { [R(["new_sale"], campaigns: [])], "new_sale", Sale, "new_sale" },
        { [R(["new_sale"], campaigns: null)], "new_sale", Sale, "new_sale" },
        { [R(["new_sale"], campaigns: ["259"])], "new_sale", Sale, "new_sale" },
        { [R(["new_sale"], campaigns: ["100", "259"])], "new_sale", Sale, "new_sale" },
        { [R(["new_sale"], campaigns: ["100"])], "new_sale", Sale, null },
        { [R(["new_sale"], campaigns: ["2590"])], "new_sale", Sale, null },
        { [R(["new_sale"], campaigns: ["259"])], "new_sale", NoCampaign, null },
        { [R(["new_sale"], campaigns: [])], "new_sale", NoCampaign, "new_sale" },
        { [R(["new_sale"], campaigns: null)], "new_sale", NoCampaign, "new_sale" },
        { [R(["partial"], campaigns: ["259"])], "partial", NoProducts, "partial" },
        { [R(["lead"], campaigns: ["100"])], "partial", NoProducts, null },

        // Product filter: empty = all, any of the order's product ids matches.
        { [R(["new_sale"], products: [])], "new_sale", Sale, "new_sale" },
        { [R(["new_sale"], products: null)], "new_sale", Sale, "new_sale" },
        { [R(["new_sale"], products: ["p1"])], "new_sale", Sale, "new_sale" },
        { [R(["new_sale"], products: ["p2"])], "new_sale", Sale, "new_sale" },
        { [R(["new_sale"], products: ["p9", "p2"])], "new_sale", Sale, "new_sale" },
        { [R(["new_sale"], products: ["p9"])], "new_sale", Sale, null },
        { [R(["new_sale"], products: ["P1"])], "new_sale", Sale, null },
        { [R(["new_sale"], products: ["p1"])], "new_sale", NoProducts, null },
        { [R(["lead"], products: ["p1"])], "partial", NoProducts, null },
        { [R(["new_sale"], products: [])], "new_sale", NoProducts, "new_sale" },

        // Campaign and product must both match.
        { [R(["new_sale"], ["259"], ["p1"])], "new_sale", Sale, "new_sale" },
        { [R(["new_sale"], ["259"], ["p9"])], "new_sale", Sale, null },
        { [R(["new_sale"], ["100"], ["p1"])], "new_sale", Sale, null },

        // Several routes: the first matching route decides; the profile fires once.
        { [R("decline"), R("new_sale")], "new_sale", Sale, "new_sale" },
        { [R("new_sale"), R("new_sale")], "new_sale", Sale, "new_sale" },
        { [R(["new_sale"], ["100"]), R(["new_sale"], ["259"])], "new_sale", Sale, "new_sale" },
        { [R(["new_sale"], ["100"]), R(["upsell"], ["259"])], "new_sale", Sale, null },
        { [R("subscription_started"), R("new_sale")], "new_sale", RecurringSale, "subscription_started" },
        { [R("new_sale"), R("subscription_started")], "new_sale", RecurringSale, "new_sale" },
        { [R("refund"), R("full_refund")], "full_refund", Sale, "refund" },
        { [R("full_refund"), R("refund")], "full_refund", Sale, "full_refund" },
        { [R("lead"), R("partial")], "partial", NoProducts, "lead" },
        { [R(["lead"], ["100"]), R("partial")], "partial", NoProducts, "partial" },
        { [R(["abandoned_cart"], products: ["p9"]), R(["abandoned_cart"], products: ["p2"])], "partial", Sale, "abandoned_cart" },

        // No routes: nothing.
        { [], "new_sale", Sale, null },
        { [], "partial", NoProducts, null },
    };

    [Theory]
    [MemberData(nameof(MatchCases))]
    public void Match_returns_the_customer_type_the_profile_fires_with(ExportRoute[] routes, string eventType, RoutingFacts order, string? expected)
    {
        Assert.Equal(expected, RouteMatcher.Match(routes, eventType, order));
    }

    public static TheoryData<ExportRoute[], string, RoutingFacts> TestCardCases => new()
    {
        { [R("new_sale")], "new_sale", Facts(testCard: true) },
        { [R(["new_sale"], ["259"], ["p1"])], "new_sale", Facts(testCard: true) },
        { [R("partial")], "partial", Facts(testCard: true) },
        { [R("lead")], "partial", Facts(products: [], testCard: true) },
        { [R("abandoned_cart")], "partial", Facts(testCard: true) },
        { [R("refund")], "full_refund", Facts(testCard: true) },
        { [R("subscription_started")], "new_sale", Facts(recurring: true, testCard: true) },
        { [R("decline"), R("new_sale"), R("chargeback")], "chargeback", Facts(testCard: true) },
        { [R(CustomerTypes.All.Select(t => t.Name).ToArray())], "new_sale", Facts(campaign: null, products: [], testCard: true) },
    };

    [Theory]
    [MemberData(nameof(TestCardCases))]
    public void Test_card_orders_never_match(ExportRoute[] routes, string eventType, RoutingFacts order)
    {
        // The same routes do match the same order without the test card.
        Assert.NotNull(RouteMatcher.Match(routes, eventType, order with { IsTestCard = false }));
        Assert.Null(RouteMatcher.Match(routes, eventType, order));
    }

    [Theory]
    [MemberData(nameof(AllCustomerTypes))]
    public void Every_customer_type_matches_a_route_for_itself(string type)
    {
        Assert.Equal(type, RouteMatcher.Match([R(type)], type, Sale));
        Assert.Null(RouteMatcher.Match([R(type)], type, Facts(testCard: true)));
    }

    public static TheoryData<string> AllCustomerTypes => new(CustomerTypes.All.Select(t => t.Name));

    public static TheoryData<string, RoutingFacts, string[]> CandidateCases => new()
    {
        { "partial", NoProducts, ["partial", "lead"] },
        { "partial", Sale, ["partial", "abandoned_cart"] },
        { "partial", Facts(products: [], hasProducts: true), ["partial", "abandoned_cart"] },
        { "partial_refund", Sale, ["partial_refund", "refund"] },
        { "full_refund", Sale, ["full_refund", "refund"] },
        { "refund", Sale, ["refund"] },
        { "new_sale", RecurringSale, ["new_sale", "subscription_started"] },
        { "new_sale", Sale, ["new_sale"] },
        { "new_sale", NoProducts, ["new_sale"] },
        { "upsell", RecurringSale, ["upsell"] },
        { "recurring_order", RecurringSale, ["recurring_order"] },
        { "decline", Sale, ["decline"] },
        { "chargeback", Sale, ["chargeback"] },
        { "lead", NoProducts, ["lead"] },
        { "abandoned_cart", Sale, ["abandoned_cart"] },
        { "subscription_started", RecurringSale, ["subscription_started"] },
        { "fulfillment_shipped", Sale, ["fulfillment_shipped"] },
    };

    [Theory]
    [MemberData(nameof(CandidateCases))]
    public void CandidateTypes_lists_the_event_type_first_then_the_derived_ones(string eventType, RoutingFacts order, string[] expected)
    {
        Assert.Equal(expected, RouteMatcher.CandidateTypes(eventType, order));
    }

    // ---- RoutingFacts.From a parsed order ------------------------------------------------------

    private static OrderData Order(string json)
    {
        using var document = JsonDocument.Parse(json);
        var result = OrderParser.Parse(document.RootElement);
        Assert.NotNull(result.Order);
        return result.Order;
    }

    public static TheoryData<string, string[], string?, string[], bool, bool, bool> FactsCases => new()
    {
        // json, products the catalog calls recurring, campaign, product ids, has products, has recurring, test card
        { """{"orderId": 1, "campaignId": "259"}""", [], "259", [], false, false, false },
        { """{"orderId": 1, "items": [{"productId": "p1"}, {"productId": "p2", "sku": "S2"}]}""", [], null, ["p1", "p2"], true, false, false },
        { """{"orderId": 1, "items": [{"sku": "S1"}]}""", [], null, [], true, false, false },
        { """{"orderId": 1, "items": [{"productId": "p1"}, {"productId": "p2", "recurring": true}]}""", [], null, ["p1", "p2"], true, true, false },
        { """{"orderId": 1, "items": [{"sku": "S1", "recurring": "yes"}]}""", [], null, [], true, true, false },
        { """{"orderId": 1, "items": [{"productId": "p1"}]}""", ["p1"], null, ["p1"], true, true, false },
        { """{"orderId": 1, "items": [{"productId": "p1"}]}""", ["p2"], null, ["p1"], true, false, false },
        { """{"orderId": 1, "items": [{"productId": "p1", "recurring": false}]}""", [], null, ["p1"], true, false, false },
        { """{"orderId": 1, "isTestCard": true}""", [], null, [], false, false, true },
        { """{"orderId": 1, "isTestCard": "1"}""", [], null, [], false, false, true },
        { """{"orderId": 1, "isTestCard": "no"}""", [], null, [], false, false, false },
    };

    [Theory]
    [MemberData(nameof(FactsCases))]
    public void RoutingFacts_From_reads_the_order(
        string json, string[] recurringProducts, string? campaign, string[] productIds, bool hasProducts, bool hasRecurring, bool testCard)
    {
        var facts = RoutingFacts.From(Order(json), recurringProducts.Contains);

        Assert.Equal(campaign, facts.CampaignId);
        Assert.Equal(productIds, facts.ProductIds);
        Assert.Equal(hasProducts, facts.HasProducts);
        Assert.Equal(hasRecurring, facts.HasRecurringProduct);
        Assert.Equal(testCard, facts.IsTestCard);
    }

    [Fact]
    public void RoutingFacts_From_without_a_catalog_uses_the_items_recurring_flag()
    {
        var facts = RoutingFacts.From(Order("""{"orderId": 1, "items": [{"productId": "p1", "recurring": 1}]}"""));

        Assert.True(facts.HasRecurringProduct);
        Assert.Equal("subscription_started", RouteMatcher.Match([R("subscription_started")], "new_sale", facts));
    }

    [Fact]
    public void A_parsed_test_card_order_never_matches()
    {
        var order = Order("""{"orderId": 1, "campaignId": "259", "isTestCard": true, "items": [{"productId": "p1"}]}""");

        Assert.Null(RouteMatcher.Match([R("new_sale"), R("partial"), R("abandoned_cart")], "new_sale", RoutingFacts.From(order)));
        Assert.Null(RouteMatcher.Match([R("partial")], "partial", RoutingFacts.From(order)));
    }
}
