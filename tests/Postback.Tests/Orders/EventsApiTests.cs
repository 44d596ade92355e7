using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Postback.Orders;
using Postback.Tests.Support;
using static Postback.Tests.Support.Json;

namespace Postback.Tests.Orders;

public sealed class EventsApiTests(TwoTenantHub fixture) : IClassFixture<TwoTenantHub>
{
    private const string Events = "/api/v1/events";
    private const string Batch = "/api/v1/events/batch";

    private HubFactory Hub => fixture.Hub;

    private HttpClient Api() => Hub.Api();

    private HttpClient Other() => Hub.Api(fixture.OtherKey);

    private Task<int> CountEventsAsync() => Hub.WithDbAsync(db => db.OrderEvents.CountAsync());

    private Task<int> CountOrdersAsync() => Hub.WithDbAsync(db => db.Orders.CountAsync());

    /// A refused request: the problem names the field, and no order or event row was written.
    private async Task<string> AssertRefusedAsync(string url, string body, string field, int status = 400)
    {
        var events = await CountEventsAsync();
        var orders = await CountOrdersAsync();
        var response = await Api().PostRawAsync(url, body);
        var reason = await Json.AssertProblemAsync(response, status, field);
        Assert.Equal(events, await CountEventsAsync());
        Assert.Equal(orders, await CountOrdersAsync());
        return reason;
    }

    private static string Event(string eventId, long orderId, string type = "new_sale", string orderExtra = "") => $$"""
        {"eventId": "{{eventId}}", "type": "{{type}}", "order": {"orderId": {{orderId}}, "firstName": "Jane"{{orderExtra}} } }
        """;

    private async Task CreateCampaignAsync(string campaignId, params string[] productIds)
    {
        var response = await Api().PostJsonAsync("/api/v1/campaigns", new
        {
            campaignId,
            name = "Campaign " + campaignId,
            products = productIds.Select(p => new { productId = p, sku = "SKU-" + p }).ToArray(),
        });
        await ReadOkAsync(response, HttpStatusCode.Created);
    }

    private async Task<long> CreateProfileAsync(string name, string customerTypes, string campaignId, int delay = 0, bool enabled = true)
    {
        var response = await Api().PostRawAsync("/api/v1/export-profiles", $$"""
            {
              "name": "{{name}}",
              "postbackUrl": "https://postingmydata.com/partials.php",
              "exportDelayMinutes": {{delay}},
              "enabled": {{(enabled ? "true" : "false")}},
              "mappings": [{"exportName": "first_name", "field": "firstName"}],
              "routes": [{"customerTypes": {{customerTypes}}, "campaignIds": ["{{campaignId}}"]}]
            }
            """);
        return (await ReadOkAsync(response, HttpStatusCode.Created))["id"]!.GetValue<long>();
    }

    // ---------------------------------------------------------------- single events

    [Fact]
    public async Task Event_is_accepted_and_its_order_can_be_read()
    {
        var response = await Api().PostRawAsync(Events, """
            {
              "eventId": "evt-accept-1",
              "type": "new_sale",
              "occurredAt": "2024-07-31T16:24:58Z",
              "order": {
                "orderId": "1001", "customerId": "C-77", "campaignId": "259", "dateCreated": "2024-07-31 16:24:58",
                "orderStatus": "COMPLETE", "totalAmount": "49.95", "currencyCode": "usd", "isTestCard": false,
                "firstName": "Jane", "lastName": "Doe", "emailAddress": "jane@example.com", "phoneNumber": "555-0100",
                "address1": "1 Main St", "city": "Springfield", "state": "IL", "postalCode": "62701", "country": "US",
                "shipFirstName": "Jane", "shipCity": "Springfield",
                "favouriteColour": "green",
                "items": [{"productId": "P1", "sku": "SKU-1", "name": "Starter kit", "qty": 2, "price": "24.975", "recurring": false}]
              }
            }
            """);
        var accepted = await ReadOkAsync(response, HttpStatusCode.Accepted);
        Assert.Equal("/api/v1/orders/1001", response.Headers.Location?.OriginalString);
        Assert.Equal("evt-accept-1", accepted["eventId"]!.GetValue<string>());
        Assert.Equal("new_sale", accepted["type"]!.GetValue<string>());
        Assert.Equal(1001, accepted["orderId"]!.GetValue<long>());
        Assert.False(accepted["duplicate"]!.GetValue<bool>());
        Assert.True(accepted["id"]!.GetValue<long>() > 0);
        Assert.Equal(new DateTimeOffset(2024, 7, 31, 16, 24, 58, TimeSpan.Zero), accepted["occurredAt"]!.GetValue<DateTimeOffset>());
        Assert.Empty(accepted["strippedFields"]!.AsArray());
        Assert.Empty(accepted["deliveries"]!.AsArray());

        var view = await ReadOkAsync(await Api().GetAsync("/api/v1/orders/1001"));
        Assert.Equal(1001, view["orderId"]!.GetValue<long>());
        var order = view["order"]!;
        Assert.Equal(1001, order["orderId"]!.GetValue<long>());
        Assert.Equal("Jane", order["firstName"]!.GetValue<string>());
        Assert.Equal("jane@example.com", order["emailAddress"]!.GetValue<string>());
        Assert.Equal(49.95m, order["totalAmount"]!.GetValue<decimal>());
        Assert.Equal("USD", order["currencyCode"]!.GetValue<string>());
        Assert.Equal("2024-07-31 16:24:58", order["dateCreated"]!.GetValue<string>());
        Assert.Equal("green", order["favouriteColour"]!.GetValue<string>());
        Assert.False(order["isTestCard"]!.GetValue<bool>());
        var item = order["items"]![0]!;
        Assert.Equal("P1", item["productId"]!.GetValue<string>());
        Assert.Equal(2, item["qty"]!.GetValue<int>());
        Assert.Equal(24.975m, item["price"]!.GetValue<decimal>());
        var events = view["events"]!.AsArray();
        Assert.Single(events);
        Assert.Equal("evt-accept-1", events[0]!["eventId"]!.GetValue<string>());
        Assert.Equal("new_sale", events[0]!["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task Event_without_event_id_gets_one()
    {
        var accepted = await ReadOkAsync(await Api().PostRawAsync(Events, """{"type": "partial", "order": {"orderId": 1002}}"""), HttpStatusCode.Accepted);
        Assert.False(string.IsNullOrWhiteSpace(accepted["eventId"]!.GetValue<string>()));
        var again = await ReadOkAsync(await Api().PostRawAsync(Events, """{"type": "partial", "order": {"orderId": 1002}}"""), HttpStatusCode.Accepted);
        Assert.NotEqual(accepted["eventId"]!.GetValue<string>(), again["eventId"]!.GetValue<string>());
        Assert.Equal(2, await Hub.WithDbAsync(db => db.OrderEvents.CountAsync(e => e.OrderId == 1002)));
    }

    [Fact]
    public async Task Event_is_idempotent_on_event_id()
    {
        var first = await ReadOkAsync(await Api().PostRawAsync(Events, Event("evt-idem-1", 1010)), HttpStatusCode.Accepted);
        var second = await ReadOkAsync(await Api().PostRawAsync(Events, Event("evt-idem-1", 1010, orderExtra: ", \"lastName\": \"Changed\"")));
        Assert.True(second["duplicate"]!.GetValue<bool>());
        Assert.Equal(first["id"]!.GetValue<long>(), second["id"]!.GetValue<long>());
        Assert.Equal("evt-idem-1", second["eventId"]!.GetValue<string>());

        Assert.Equal(1, await Hub.WithDbAsync(db => db.OrderEvents.CountAsync(e => e.EventId == "evt-idem-1")));
        var view = await ReadOkAsync(await Api().GetAsync("/api/v1/orders/1010"));
        Assert.Single(view["events"]!.AsArray());
        // A repeated event is not applied again.
        Assert.Null(view["order"]!["lastName"]);
    }

    [Fact]
    public async Task Events_for_the_same_order_upsert_one_order()
    {
        await ReadOkAsync(await Api().PostRawAsync(Events, """
            {"eventId": "evt-upsert-1", "type": "partial",
             "order": {"orderId": 1020, "firstName": "Jane", "city": "Springfield", "emailAddress": "jane@example.com"}}
            """), HttpStatusCode.Accepted);
        await ReadOkAsync(await Api().PostRawAsync(Events, """
            {"eventId": "evt-upsert-2", "type": "new_sale",
             "order": {"orderId": 1020, "lastName": "Doe", "city": "Shelbyville", "items": [{"sku": "SKU-9", "qty": 1}]}}
            """), HttpStatusCode.Accepted);

        Assert.Equal(1, await Hub.WithDbAsync(db => db.Orders.CountAsync(o => o.OrderId == 1020)));
        var view = await ReadOkAsync(await Api().GetAsync("/api/v1/orders/1020"));
        var order = view["order"]!;
        Assert.Equal("Jane", order["firstName"]!.GetValue<string>());
        Assert.Equal("Doe", order["lastName"]!.GetValue<string>());
        Assert.Equal("Shelbyville", order["city"]!.GetValue<string>());
        Assert.Equal("jane@example.com", order["emailAddress"]!.GetValue<string>());
        Assert.Equal("SKU-9", order["items"]![0]!["sku"]!.GetValue<string>());
        Assert.Equal(new[] { "evt-upsert-1", "evt-upsert-2" }, view["events"]!.AsArray().Select(e => e!["eventId"]!.GetValue<string>()));
        Assert.Equal(new[] { "partial", "new_sale" }, view["events"]!.AsArray().Select(e => e!["type"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Card_numbers_are_stripped_and_never_stored()
    {
        var response = await Api().PostRawAsync(Events, """
            {"eventId": "evt-card-1", "type": "new_sale",
             "order": {"orderId": 1030, "firstName": "Jane",
                       "cardNumber": "4111111111111111", "card_number": "4111111111111111", "CCNUMBER": "4111111111111111",
                       "cvv": "737", "cardSecurityCode": "737", "creditCardExpiry": "12/30"}}
            """);
        var accepted = await ReadOkAsync(response, HttpStatusCode.Accepted);
        var stripped = accepted["strippedFields"]!.AsArray().Select(f => f!.GetValue<string>()).ToList();
        Assert.Equal(new[] { "cardNumber", "card_number", "CCNUMBER", "cvv", "cardSecurityCode", "creditCardExpiry" }, stripped);

        var data = await Hub.WithDbAsync(db => db.Orders.Where(o => o.OrderId == 1030).Select(o => o.Data).SingleAsync());
        Assert.DoesNotContain("4111111111111111", data, StringComparison.Ordinal);
        Assert.DoesNotContain("cardNumber", data, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("card_number", data, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("737", data, StringComparison.Ordinal);
        Assert.Contains("Jane", data, StringComparison.Ordinal);

        var text = await (await Api().GetAsync("/api/v1/orders/1030")).Content.ReadAsStringAsync();
        Assert.Contains("Jane", text, StringComparison.Ordinal);
        Assert.DoesNotContain("4111111111111111", text, StringComparison.Ordinal);
        Assert.DoesNotContain("cardNumber", text, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("cvv", text, StringComparison.OrdinalIgnoreCase);
    }

    public static TheoryData<string, string, string> InvalidEvents => new()
    {
        { """{"eventId": "bad-1", "type": "sale", "order": {"orderId": 1100}}""", "type", "'sale' is not a customer type" },
        { """{"eventId": "bad-2", "type": "New_Sale", "order": {"orderId": 1100}}""", "type", "is not a customer type" },
        { """{"eventId": "bad-3", "type": 5, "order": {"orderId": 1100}}""", "type", "is not a customer type" },
        { """{"eventId": "bad-4", "order": {"orderId": 1100}}""", "type", "is required" },
        { """{"eventId": "bad-5", "type": "new_sale"}""", "order", "is required" },
        { """{"eventId": "bad-6", "type": "new_sale", "order": "1100"}""", "order", "must be a JSON object" },
        { """{"eventId": "bad-7", "type": "new_sale", "order": null}""", "order", "must be a JSON object" },
        { """{"eventId": "bad-8", "type": "new_sale", "order": {"orderId": 1100, "emailAddress": "not-an-email"}}""", "order.emailAddress", "must be an e-mail address" },
        { """{"eventId": "bad-9", "type": "new_sale", "order": {"firstName": "No id"}}""", "order.orderId", "is required" },
        { """{"eventId": "bad-10", "type": "new_sale", "order": {"orderId": "12ab"}}""", "order.orderId", "must be a positive whole number" },
        { """{"eventId": "bad-11", "type": "new_sale", "order": {"orderId": -5}}""", "order.orderId", "must be a positive whole number" },
        { """{"eventId": "bad-12", "type": "new_sale", "order": {"orderId": 0}}""", "order.orderId", "must be a positive whole number" },
        { """{"eventId": "bad-13", "type": "new_sale", "order": {"orderId": 1100, "totalAmount": "lots"}}""", "order.totalAmount", "must be a decimal amount" },
        { """{"eventId": "bad-14", "type": "new_sale", "order": {"orderId": 1100, "currencyCode": "DOLLARS"}}""", "order.currencyCode", "three-letter ISO 4217" },
        { """{"eventId": "bad-15", "type": "new_sale", "order": {"orderId": 1100, "dateCreated": "yesterday"}}""", "order.dateCreated", "must be a date and time" },
        { """{"eventId": "bad-16", "type": "new_sale", "order": {"orderId": 1100, "isTestCard": "maybe"}}""", "order.isTestCard", "must be true/false or 1/0" },
        { """{"eventId": "bad-17", "type": "new_sale", "order": {"orderId": 1100, "items": "P1"}}""", "order.items", "must be an array" },
        { """{"eventId": "bad-18", "type": "new_sale", "order": {"orderId": 1100, "items": [{"qty": 1}]}}""", "order.items[0]", "needs a productId or a sku" },
        { """{"eventId": "bad-19", "type": "new_sale", "order": {"orderId": 1100, "items": [{"sku": "A", "qty": -1}]}}""", "order.items[0].qty", "must be a whole number" },
        { """{"eventId": "bad-20", "type": "new_sale", "order": {"orderId": 1100, "items": [{"sku": "A", "colour": "red"}]}}""", "order.items[0].colour", "is not a line item field" },
        { """{"eventId": "bad-21", "type": "new_sale", "order": {"orderId": 1100, "items": [{"sku": "A", "price": "free"}]}}""", "order.items[0].price", "must be a decimal amount" },
        { """{"eventId": "bad-22", "type": "new_sale", "order": {"orderId": 1100, "orderDate": "2024-07-31 16:24:58"}}""", "order.orderDate", "is computed by Postback" },
        { """{"eventId": "bad-23", "type": "new_sale", "order": {"orderId": 1100, "product1_sku": "A"}}""", "order.product1_sku", "line items go in items[]" },
        { """{"eventId": "bad-24", "type": "new_sale", "order": {"orderId": 1100, "bad key!": "x"}}""", "order.bad key!", "is not a valid field name" },
        { """{"eventId": "bad-25", "type": "new_sale", "order": {"orderId": 1100, "firstName": {"given": "Jane"}}}""", "order.firstName", "must be a string, number or boolean" },
        { """{"eventId": "bad-26", "type": "new_sale", "order": {"orderId": 1100, "firstName": "Jane", "FirstName": "Janet"}}""", "order.FirstName", "is given more than once" },
        { """{"eventId": "bad-27", "type": "new_sale", "order": {"orderId": 1100, "firstName": "Line\nbreak"}}""", "order.firstName", "must not contain control characters" },
        { $$"""{"eventId": "bad-28", "type": "new_sale", "order": {"orderId": 1100, "notes": "{{new string('n', 1001)}}" } }""", "order.notes", "must be at most 1000 characters" },
        { """{"eventId": "has space", "type": "new_sale", "order": {"orderId": 1100} }""", "eventId", "must be 1 to 100 letters" },
        { $$"""{"eventId": "{{new string('e', 101)}}", "type": "new_sale", "order": {"orderId": 1100} }""", "eventId", "must be 1 to 100 letters" },
        { """{"eventId": "bad-31", "type": "new_sale", "occurredAt": "soon", "order": {"orderId": 1100}}""", "occurredAt", "must be an ISO 8601 date" },
        { """{"eventId": "bad-32", "type": "new_sale", "customerType": "new_sale", "order": {"orderId": 1100}}""", "customerType", "is not a known field" },
        { """{"eventId": "bad-33", "Type": "new_sale", "order": {"orderId": 1100}}""", "Type", "is not a known field" },
        { """[{"eventId": "bad-34", "type": "new_sale", "order": {"orderId": 1100}}]""", "body", "must be a JSON object" },
    };

    [Theory]
    [MemberData(nameof(InvalidEvents))]
    public async Task Invalid_event_is_refused_naming_the_field_and_nothing_is_stored(string body, string field, string reason)
    {
        var given = await AssertRefusedAsync(Events, body, field);
        Assert.Contains(reason, given, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Too_many_extra_fields_are_refused()
    {
        var extras = string.Join(", ", Enumerable.Range(1, 101).Select(i => $"\"extra{i}\": \"v\""));
        var reason = await AssertRefusedAsync(Events, $$"""{"type": "new_sale", "order": {"orderId": 1101, {{extras}} } }""", "order.extra101");
        Assert.Contains("at most 100 extra fields", reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{")]
    [InlineData("""{"type": "new_sale", "order": {"orderId": 1102,}}""")]
    [InlineData("""{"type": "new_sale" "order": {}}""")]
    [InlineData("not json")]
    public async Task Malformed_json_is_refused_and_nothing_is_stored(string body)
    {
        var events = await CountEventsAsync();
        var response = await Api().PostRawAsync(Events, body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"expected 400, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.NotEmpty(JsonNode.Parse(text)!["errors"]!.AsObject());
        Assert.Equal(events, await CountEventsAsync());
    }

    [Fact]
    public async Task Empty_body_is_refused()
    {
        var response = await Api().PostAsync(Events, new StringContent("", Encoding.UTF8, "application/json"));
        await Json.AssertProblemAsync(response, 400, "body");
    }

    [Fact]
    public async Task Oversized_event_is_refused_with_413_and_nothing_is_stored()
    {
        // One event is limited to 256 KiB: this one is about 300 KiB.
        var body = $$"""{"eventId": "evt-huge", "type": "new_sale", "order": {"orderId": 1110, "notes": "{{new string('x', 300 * 1024)}}" } }""";
        var reason = await AssertRefusedAsync(Events, body, "body", 413);
        Assert.Contains("larger than this endpoint accepts", reason, StringComparison.Ordinal);
        Assert.False(await Hub.WithDbAsync(db => db.Orders.AnyAsync(o => o.OrderId == 1110)));

        // Many small extra fields over the limit are refused the same way.
        var padded = string.Join(", ", Enumerable.Range(1, 3000).Select(i => $"\"pad{i}\": \"{new string('p', 90)}\""));
        await AssertRefusedAsync(Events, $$"""{"type": "new_sale", "order": {"orderId": 1111, {{padded}} } }""", "body", 413);
    }

    [Fact]
    public async Task Event_just_under_the_size_limit_is_read_and_validated()
    {
        // About 200 KiB: not too large, so the hub reads it and names the real problem.
        var body = $$"""{"type": "new_sale", "order": {"orderId": 1112, "notes": "{{new string('x', 200 * 1024)}}" } }""";
        var reason = await AssertRefusedAsync(Events, body, "order.notes");
        Assert.Contains("at most 1000 characters", reason, StringComparison.Ordinal);
    }

    // ---------------------------------------------------------------- batches

    [Fact]
    public async Task Batch_stores_all_events()
    {
        var response = await Api().PostRawAsync(Batch, $$"""
            {"events": [{{Event("evt-batch-1", 1200)}}, {{Event("evt-batch-2", 1201, "partial")}}, {{Event("evt-batch-3", 1200, "upsell", ", \"lastName\": \"Doe\"")}}]}
            """);
        var accepted = await ReadOkAsync(response, HttpStatusCode.Accepted);
        var events = accepted["events"]!.AsArray();
        Assert.Equal(new[] { "evt-batch-1", "evt-batch-2", "evt-batch-3" }, events.Select(e => e!["eventId"]!.GetValue<string>()));
        Assert.All(events, e => Assert.False(e!["duplicate"]!.GetValue<bool>()));

        Assert.Equal(3, await Hub.WithDbAsync(db => db.OrderEvents.CountAsync(e => e.EventId.StartsWith("evt-batch-"))));
        // Two events for order 1200 in one batch: one order, both events, fields merged.
        Assert.Equal(1, await Hub.WithDbAsync(db => db.Orders.CountAsync(o => o.OrderId == 1200)));
        var view = await ReadOkAsync(await Api().GetAsync("/api/v1/orders/1200"));
        Assert.Equal(2, view["events"]!.AsArray().Count);
        Assert.Equal("Doe", view["order"]!["lastName"]!.GetValue<string>());
        await ReadOkAsync(await Api().GetAsync("/api/v1/orders/1201"));
    }

    [Fact]
    public async Task Batch_with_one_bad_event_stores_nothing()
    {
        var body = $$"""{"events": [{{Event("evt-batchbad-1", 1210)}}, {{Event("evt-batchbad-2", 1211, "nonsense")}}]}""";
        var reason = await AssertRefusedAsync(Batch, body, "events[1].type");
        Assert.Contains("'nonsense' is not a customer type", reason, StringComparison.Ordinal);

        body = $$"""{"events": [{{Event("evt-batchbad-3", 1212)}}, {"type": "new_sale", "order": {"orderId": 1213, "emailAddress": "x"} } ]}""";
        await AssertRefusedAsync(Batch, body, "events[1].order.emailAddress");

        body = $$"""{"events": [{{Event("evt-batchbad-4", 1214)}}, "not an event"]}""";
        await AssertRefusedAsync(Batch, body, "events[1].body");

        Assert.False(await Hub.WithDbAsync(db => db.Orders.AnyAsync(o => o.OrderId >= 1210 && o.OrderId <= 1214)));
    }

    [Fact]
    public async Task Batch_refuses_a_repeated_event_id()
    {
        var body = $$"""{"events": [{{Event("evt-batchrep", 1220)}}, {{Event("evt-batchrep", 1221)}}]}""";
        var reason = await AssertRefusedAsync(Batch, body, "events[1].eventId");
        Assert.Contains("repeats events[0].eventId", reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Batch_size_is_limited()
    {
        var tooMany = string.Join(",", Enumerable.Range(0, 501).Select(i => Event($"evt-many-{i}", 3000 + i)));
        var reason = await AssertRefusedAsync(Batch, $$"""{"events": [{{tooMany}}]}""", "events");
        Assert.Contains("1 to 500 events", reason, StringComparison.Ordinal);

        await AssertRefusedAsync(Batch, """{"events": []}""", "events");
        await AssertRefusedAsync(Batch, "{}", "events");
        await AssertRefusedAsync(Batch, """{"events": {}}""", "events");
        await AssertRefusedAsync(Batch, $$"""{"events": [{{Event("evt-batchextra", 1230)}}], "dryRun": true}""", "dryRun");
    }

    [Fact]
    public async Task Batch_of_500_events_over_one_mebibyte_is_accepted()
    {
        // The batch endpoint has its own limit (8 MiB), above the hub's 1 MiB default.
        var extra = $", \"notes\": \"{new string('n', 1000)}\""
            + string.Concat(new[] { "sourceValue1", "sourceValue2", "sourceValue3", "address1", "address2", "shipAddress1", "shipAddress2" }
                .Select(f => $", \"{f}\": \"{new string('v', 250)}\""));
        var events = string.Join(",", Enumerable.Range(0, 500).Select(i => Event($"evt-big-{i}", 2000 + i, orderExtra: extra)));
        var body = $$"""{"events": [{{events}}]}""";
        Assert.True(Encoding.UTF8.GetByteCount(body) > 1024 * 1024);
        var accepted = await ReadOkAsync(await Api().PostRawAsync(Batch, body), HttpStatusCode.Accepted);
        Assert.Equal(500, accepted["events"]!.AsArray().Count);
        Assert.Equal(500, await Hub.WithDbAsync(db => db.OrderEvents.CountAsync(e => e.EventId.StartsWith("evt-big-"))));
    }

    // ---------------------------------------------------------------- routing

    [Fact]
    public async Task Matched_profiles_lists_a_profile_whose_route_matches()
    {
        await CreateCampaignAsync("EV-MATCH", "EV-MATCH-P1");
        var profileId = await CreateProfileAsync("Match new sales", """["new_sale"]""", "EV-MATCH", delay: 5);
        await CreateProfileAsync("Disabled", """["new_sale"]""", "EV-MATCH", enabled: false);
        await CreateProfileAsync("Refunds only", """["refund"]""", "EV-MATCH");

        var accepted = await ReadOkAsync(await Api().PostRawAsync(Events, """
            {"eventId": "evt-match-1", "type": "new_sale", "occurredAt": "2024-07-31T16:00:00Z",
             "order": {"orderId": 1400, "campaignId": "EV-MATCH", "items": [{"productId": "EV-MATCH-P1"}]}}
            """), HttpStatusCode.Accepted);
        var matched = accepted["deliveries"]!.AsArray();
        var match = Assert.Single(matched);
        Assert.Equal(profileId, match!["profileId"]!.GetValue<long>());
        Assert.Equal("Match new sales", match["profileName"]!.GetValue<string>());
        Assert.Equal("new_sale", match["customerType"]!.GetValue<string>());
        Assert.Equal(new DateTimeOffset(2024, 7, 31, 16, 5, 0, TimeSpan.Zero), match["dueAt"]!.GetValue<DateTimeOffset>());

        // A full refund matches the "all refunds" route with customer type refund.
        var refund = await ReadOkAsync(await Api().PostRawAsync(Events, """
            {"eventId": "evt-match-2", "type": "full_refund", "order": {"orderId": 1400}}
            """), HttpStatusCode.Accepted);
        var refundMatch = Assert.Single(refund["deliveries"]!.AsArray());
        Assert.Equal("refund", refundMatch!["customerType"]!.GetValue<string>());

        // Another campaign matches nothing.
        var other = await ReadOkAsync(await Api().PostRawAsync(Events, """
            {"eventId": "evt-match-3", "type": "new_sale", "order": {"orderId": 1401, "campaignId": "EV-ELSEWHERE"}}
            """), HttpStatusCode.Accepted);
        Assert.Empty(other["deliveries"]!.AsArray());
    }

    [Fact]
    public async Task Partial_with_products_matches_abandoned_cart_routes()
    {
        await CreateCampaignAsync("EV-PARTIAL");
        var cart = await CreateProfileAsync("Abandoned carts", """["abandoned_cart"]""", "EV-PARTIAL");
        var lead = await CreateProfileAsync("Leads", """["lead"]""", "EV-PARTIAL");

        var withItems = await ReadOkAsync(await Api().PostRawAsync(Events, """
            {"type": "partial", "order": {"orderId": 1410, "campaignId": "EV-PARTIAL", "items": [{"sku": "X"}]}}
            """), HttpStatusCode.Accepted);
        var m = Assert.Single(withItems["deliveries"]!.AsArray());
        Assert.Equal(cart, m!["profileId"]!.GetValue<long>());
        Assert.Equal("abandoned_cart", m["customerType"]!.GetValue<string>());

        var withoutItems = await ReadOkAsync(await Api().PostRawAsync(Events, """
            {"type": "partial", "order": {"orderId": 1411, "campaignId": "EV-PARTIAL"}}
            """), HttpStatusCode.Accepted);
        m = Assert.Single(withoutItems["deliveries"]!.AsArray());
        Assert.Equal(lead, m!["profileId"]!.GetValue<long>());
        Assert.Equal("lead", m["customerType"]!.GetValue<string>());
    }

    [Fact]
    public async Task Test_card_order_matches_nothing()
    {
        await CreateCampaignAsync("EV-TEST");
        await CreateProfileAsync("Would match", """["new_sale"]""", "EV-TEST");

        var accepted = await ReadOkAsync(await Api().PostRawAsync(Events, """
            {"eventId": "evt-testcard-1", "type": "new_sale", "order": {"orderId": 1420, "campaignId": "EV-TEST", "isTestCard": true}}
            """), HttpStatusCode.Accepted);
        Assert.Empty(accepted["deliveries"]!.AsArray());
        var view = await ReadOkAsync(await Api().GetAsync("/api/v1/orders/1420"));
        Assert.True(view["order"]!["isTestCard"]!.GetValue<bool>());

        var asText = await ReadOkAsync(await Api().PostRawAsync(Events, """
            {"eventId": "evt-testcard-2", "type": "new_sale", "order": {"orderId": 1421, "campaignId": "EV-TEST", "isTestCard": "1"}}
            """), HttpStatusCode.Accepted);
        Assert.Empty(asText["deliveries"]!.AsArray());

        // The control: the same order without a test card matches.
        var real = await ReadOkAsync(await Api().PostRawAsync(Events, """
            {"eventId": "evt-testcard-3", "type": "new_sale", "order": {"orderId": 1422, "campaignId": "EV-TEST"}}
            """), HttpStatusCode.Accepted);
        Assert.Single(real["deliveries"]!.AsArray());
    }

    // ---------------------------------------------------------------- organizations

    [Fact]
    public async Task Another_organization_never_sees_an_order_and_has_its_own()
    {
        await ReadOkAsync(await Api().PostRawAsync(Events, """
            {"eventId": "evt-iso-1", "type": "new_sale", "order": {"orderId": 1500, "firstName": "Alice"}}
            """), HttpStatusCode.Accepted);

        await AssertNotFoundAsync(await Other().GetAsync("/api/v1/orders/1500"));

        // The same orderId and eventId in the other organization: a different order, not a duplicate.
        var theirs = await ReadOkAsync(await Other().PostRawAsync(Events, """
            {"eventId": "evt-iso-1", "type": "partial", "order": {"orderId": 1500, "firstName": "Bob"}}
            """), HttpStatusCode.Accepted);
        Assert.False(theirs["duplicate"]!.GetValue<bool>());

        var mine = await ReadOkAsync(await Api().GetAsync("/api/v1/orders/1500"));
        var other = await ReadOkAsync(await Other().GetAsync("/api/v1/orders/1500"));
        Assert.Equal("Alice", mine["order"]!["firstName"]!.GetValue<string>());
        Assert.Equal("Bob", other["order"]!["firstName"]!.GetValue<string>());
        Assert.Equal("new_sale", Assert.Single(mine["events"]!.AsArray())!["type"]!.GetValue<string>());
        Assert.Equal("partial", Assert.Single(other["events"]!.AsArray())!["type"]!.GetValue<string>());
        Assert.Equal(2, await Hub.WithDbAsync(db => db.Orders.CountAsync(o => o.OrderId == 1500)));
    }

    [Fact]
    public async Task Unknown_order_is_404()
    {
        await AssertNotFoundAsync(await Api().GetAsync("/api/v1/orders/999999999"));
    }
}
