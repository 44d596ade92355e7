using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Postback.Catalog;
using Postback.Orders;
using Postback.Tests.Support;
using static Postback.Tests.Support.Json;

namespace Postback.Tests.Plugins;

/// Receiving postbacks through a plugin instance, on each storage: the real hub on Kestrel, a
/// real database, the CRM played by an HTTP client without an API key.
public abstract class PluginWebhookTests(PluginHub fixture)
{
    private static long _nextOrder = 500_000;

    private HubFactory Hub => fixture.Hub;

    private static long NextOrderId() => Interlocked.Increment(ref _nextOrder);

    private async Task<(long Id, string Secret, JsonNode View)> CreateInstanceAsync(
        string kind = "konnektive", bool importUnknownSkus = false, bool enabled = true, string? secret = null, string? key = null)
    {
        using var api = Hub.Api(key ?? HubFactory.ApiKey);
        var response = await api.PostJsonAsync("/api/v1/plugin-instances", new
        {
            name = "Konnektive main",
            kind,
            secret,
            campaignId = key is null ? PluginHub.CampaignId : null,
            importUnknownSkus,
            enabled,
        });
        var view = await ReadOkAsync(response, HttpStatusCode.Created);
        return (view["id"]!.GetValue<long>(), view["secret"]!.GetValue<string>(), view);
    }

    // The fields of seed 000's Konnektive field mapping, as Konnektive fills them in.
    private Dictionary<string, string> KonnektiveFields(long instanceId, string? secret, long orderId, string customerType = "NEW_SALE", string sku = "KIT-1") => new()
    {
        ["country"] = "US",
        ["product1_qty"] = "2",
        ["orderId"] = orderId.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["state"] = "NY",
        ["product1_sku"] = sku,
        ["shipAddress2"] = "",
        ["address2"] = "Apt 4",
        ["firstName"] = "Jane",
        ["shipState"] = "NY",
        ["phoneNumber"] = "5551234567",
        ["customerType"] = customerType,
        ["shipCountry"] = "US",
        ["organizationId"] = fixture.OrganizationId.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["product1_name"] = "Starter kit",
        ["orderStatus"] = "COMPLETE",
        ["postalcode"] = "10001",
        ["product1_price"] = "49.95",
        ["shipAddress1"] = "1 Main St",
        ["city"] = "New York",
        ["lastName"] = "Doe",
        ["shipCity"] = "New York",
        ["address1"] = "1 Main St",
        ["emailAddress"] = "jane@example.com",
        ["shipPostalCode"] = "10001",
        ["pluginInstanceId"] = instanceId.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["secret"] = secret ?? "",
    };

    private async Task<HttpResponseMessage> PostFormAsync(Dictionary<string, string> fields, string kind = "konnektive")
    {
        using var crm = Hub.Api(key: null);
        return await crm.PostAsync($"/api/v1/plugins/webhooks/{kind}", new FormUrlEncodedContent(fields.Where(f => f.Value.Length > 0 || f.Key != "secret")));
    }

    private Task<bool> OrderExistsAsync(long orderId) => Hub.WithDbAsync(db => db.Orders.AnyAsync(o => o.OrderId == orderId));

    private Task<int> EventCountAsync(long orderId) => Hub.WithDbAsync(db => db.OrderEvents.CountAsync(e => e.OrderId == orderId));

    private async Task<JsonNode> OrderAsync(long orderId) => await ReadOkAsync(await Hub.Api().GetAsync($"/api/v1/orders/{orderId}"));

    private async Task<JsonArray> InboundAsync(long instanceId) =>
        (await ReadOkAsync(await Hub.Api().GetAsync($"/api/v1/plugin-instances/{instanceId}/inbound"))).AsArray();

    [Fact]
    public async Task An_instance_shows_its_secret_and_the_ready_to_paste_Konnektive_pair()
    {
        var (id, secret, view) = await CreateInstanceAsync();
        Assert.StartsWith("pbs_", secret);
        Assert.True(secret.Length >= 40, "a generated secret carries 256 random bits");
        var setup = view["setup"]!;
        var postbackUrl = setup["postbackUrl"]!.GetValue<string>();
        Assert.Equal("https://hooks.example.com/api/v1/plugins/webhooks/konnektive", postbackUrl);
        Assert.DoesNotContain('?', postbackUrl);
        Assert.Equal($"{postbackUrl}?organizationId={fixture.OrganizationId}&pluginInstanceId={id}", setup["webhookUrl"]!.GetValue<string>());
        Assert.Equal($"{postbackUrl}?organizationId={fixture.OrganizationId}&pluginInstanceId={id}&secret={secret}", setup["webhookUrlWithSecret"]!.GetValue<string>());

        var mapping = setup["fieldMapping"]!.AsObject();
        Assert.Equal(fixture.OrganizationId.ToString(System.Globalization.CultureInfo.InvariantCulture), mapping["organizationId"]!.GetValue<string>());
        Assert.Equal(id.ToString(System.Globalization.CultureInfo.InvariantCulture), mapping["pluginInstanceId"]!.GetValue<string>());
        Assert.Equal(secret, mapping["secret"]!.GetValue<string>());
        Assert.Equal("[firstName]", mapping["firstName"]!.GetValue<string>());
        Assert.Equal("[product1_sku]", mapping["product1_sku"]!.GetValue<string>());
        // The text form is the same object, ready to paste.
        Assert.Equal(mapping.ToJsonString(), JsonNode.Parse(setup["fieldMappingText"]!.GetValue<string>())!.ToJsonString());

        var again = await ReadOkAsync(await Hub.Api().GetAsync($"/api/v1/plugin-instances/{id}"));
        Assert.Equal(secret, again["secret"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_Konnektive_form_postback_upserts_the_order_and_a_repeat_stores_nothing_new()
    {
        var (id, secret, _) = await CreateInstanceAsync();
        var orderId = NextOrderId();
        var fields = KonnektiveFields(id, secret, orderId);

        var first = await ReadOkAsync(await PostFormAsync(fields));
        Assert.Equal("accepted", first["outcome"]!.GetValue<string>());
        Assert.Equal("new_sale", first["customerType"]!.GetValue<string>());
        var order = await OrderAsync(orderId);
        Assert.Equal("Jane", order["order"]!["firstName"]!.GetValue<string>());
        Assert.Equal("10001", order["order"]!["postalCode"]!.GetValue<string>());
        Assert.Equal(PluginHub.CampaignId, order["order"]!["campaignId"]!.GetValue<string>());
        var item = order["order"]!["items"]![0]!;
        Assert.Equal("P-KIT", item["productId"]!.GetValue<string>());
        Assert.Equal(2, item["qty"]!.GetValue<int>());
        Assert.Equal(49.95m, item["price"]!.GetValue<decimal>());

        var repeat = await ReadOkAsync(await PostFormAsync(fields));
        Assert.Equal("duplicate", repeat["outcome"]!.GetValue<string>());
        Assert.Equal(first["eventId"]!.GetValue<string>(), repeat["eventId"]!.GetValue<string>());
        Assert.Equal(1, await EventCountAsync(orderId));
        Assert.Equal(1, await Hub.WithDbAsync(db => db.Orders.CountAsync(o => o.OrderId == orderId)));

        // The same order later as an upsell is a new event of the same order.
        var upsell = await ReadOkAsync(await PostFormAsync(KonnektiveFields(id, secret, orderId, customerType: "Upsell")));
        Assert.Equal("accepted", upsell["outcome"]!.GetValue<string>());
        Assert.Equal(2, await EventCountAsync(orderId));
        Assert.Equal(1, await Hub.WithDbAsync(db => db.Orders.CountAsync(o => o.OrderId == orderId)));
    }

    [Fact]
    public async Task The_CRM_firing_the_same_postback_concurrently_stores_one_event()
    {
        var (id, secret, _) = await CreateInstanceAsync();
        var orderId = NextOrderId();
        var fields = KonnektiveFields(id, secret, orderId);
        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ => await ReadOkAsync(await PostFormAsync(fields))));
        Assert.Single(answers, a => a["outcome"]!.GetValue<string>() == "accepted");
        Assert.Equal(7, answers.Count(a => a["outcome"]!.GetValue<string>() == "duplicate"));
        Assert.Single(answers.Select(a => a["eventId"]!.GetValue<string>()).Distinct());
        Assert.Equal(1, await EventCountAsync(orderId));
    }

    [Fact]
    public async Task Concurrent_postbacks_with_the_same_new_SKU_import_it_once()
    {
        var (id, secret, _) = await CreateInstanceAsync(importUnknownSkus: true);
        var sku = $"RACE-{NextOrderId()}";
        var orders = Enumerable.Range(0, 6).Select(_ => NextOrderId()).ToList();
        var answers = await Task.WhenAll(orders.Select(async o => await ReadOkAsync(await PostFormAsync(KonnektiveFields(id, secret, o, sku: sku)))));
        Assert.All(answers, a => Assert.Equal("accepted", a["outcome"]!.GetValue<string>()));
        Assert.Equal(1, await Hub.WithDbAsync(db => db.ImportedSkus.CountAsync(s => s.Sku == sku)));
        var link = await ReadOkAsync(await Hub.Api().PostJsonAsync($"/api/v1/skus/{sku}/link", new { productId = "P-KIT" }));
        Assert.Equal(orders.Count, link["resolvedOrders"]!.GetValue<int>());
    }

    [Fact]
    public async Task GET_query_and_JSON_POST_with_the_secret_in_a_header_are_accepted_with_keys_in_any_case()
    {
        var (id, secret, _) = await CreateInstanceAsync(kind: "checkoutchamp");
        using var crm = Hub.Api(key: null);

        var getOrder = NextOrderId();
        var get = await crm.GetAsync($"/api/v1/plugins/webhooks/checkoutchamp?ORGANIZATIONID={fixture.OrganizationId}&pluginInstanceId={id}&secret={secret}&orderid={getOrder}&customertype=Partial&FIRSTNAME=Ann&postalcode=02139");
        Assert.Equal("partial", (await ReadOkAsync(get))["customerType"]!.GetValue<string>());
        var stored = (await OrderAsync(getOrder))["order"]!;
        Assert.Equal("Ann", stored["firstName"]!.GetValue<string>());
        Assert.Equal("02139", stored["postalCode"]!.GetValue<string>());

        var jsonOrder = NextOrderId();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/plugins/webhooks/checkoutchamp")
        {
            Content = JsonContent.Create(new Dictionary<string, object>
            {
                ["pluginInstanceId"] = id,
                ["orderId"] = jsonOrder,
                ["customerType"] = "New Sale",
                ["totalAmount"] = "$1,049.95",
                ["dateCreated"] = "07/31/2024 04:24:58 PM",
                ["product1_sku"] = "REFILL-1",
                ["product1_qty"] = 1,
                ["product1_price"] = 19.5,
            }),
        };
        request.Headers.Add("X-Postback-Secret", secret);
        var json = await ReadOkAsync(await crm.SendAsync(request));
        Assert.Equal("new_sale", json["customerType"]!.GetValue<string>());
        var order = (await OrderAsync(jsonOrder))["order"]!;
        Assert.Equal(1049.95m, order["totalAmount"]!.GetValue<decimal>());
        Assert.Equal("2024-07-31 16:24:58", order["dateCreated"]!.GetValue<string>());
        Assert.Equal("P-REFILL", order["items"]![0]!["productId"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_wrong_missing_or_other_instances_secret_gets_401_and_stores_no_order()
    {
        var (id, secret, _) = await CreateInstanceAsync();
        var (_, otherSecret, _) = await CreateInstanceAsync();
        var orderId = NextOrderId();

        foreach (var given in new[] { "wrong-secret-0123456789", null, otherSecret, secret[..^1] })
        {
            var response = await PostFormAsync(KonnektiveFields(id, given, orderId));
            await AssertProblemAsync(response, 401, "secret");
        }
        // The right secret in the body and a wrong one in the query: every secret given must match.
        using var crm = Hub.Api(key: null);
        var mixed = await crm.PostAsync($"/api/v1/plugins/webhooks/konnektive?secret={otherSecret}", new FormUrlEncodedContent(KonnektiveFields(id, secret, orderId)));
        await AssertProblemAsync(mixed, 401, "secret");

        Assert.False(await OrderExistsAsync(orderId));
        Assert.Equal(0, await EventCountAsync(orderId));

        var log = await InboundAsync(id);
        Assert.Equal(5, log.Count(e => e!["outcome"]!.GetValue<string>() == "refused" && e["statusCode"]!.GetValue<int>() == 401));
        foreach (var entry in log)
        {
            var payload = entry!["payload"]!.GetValue<string>();
            Assert.DoesNotContain(secret, payload, StringComparison.Ordinal);
            Assert.DoesNotContain(otherSecret, payload, StringComparison.Ordinal);
            Assert.DoesNotContain("wrong-secret-0123456789", payload, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Unknown_disabled_or_mismatched_instances_get_404_and_store_nothing()
    {
        var (id, secret, _) = await CreateInstanceAsync();
        var (disabledId, disabledSecret, _) = await CreateInstanceAsync(enabled: false);
        var orderId = NextOrderId();

        await AssertNotFoundAsync(await PostFormAsync(KonnektiveFields(999_999, secret, orderId)));
        await AssertNotFoundAsync(await PostFormAsync(KonnektiveFields(disabledId, disabledSecret, orderId)));
        // The instance is a Konnektive one, so the CheckoutChamp endpoint does not know it.
        await AssertNotFoundAsync(await PostFormAsync(KonnektiveFields(id, secret, orderId), kind: "checkoutchamp"));
        await AssertNotFoundAsync(await PostFormAsync(KonnektiveFields(id, secret, orderId), kind: "shopify"));
        var otherOrg = KonnektiveFields(id, secret, orderId);
        otherOrg["organizationId"] = "424242";
        await AssertNotFoundAsync(await PostFormAsync(otherOrg));

        Assert.False(await OrderExistsAsync(orderId));
        var disabledLog = await InboundAsync(disabledId);
        Assert.Equal("disabled", Assert.Single(disabledLog)!["outcome"]!.GetValue<string>());
        // Nothing attributable to the enabled instance: every refusal above was for someone else.
        Assert.Empty(await InboundAsync(id));
    }

    [Fact]
    public async Task A_missing_instance_id_is_a_clear_400()
    {
        var fields = KonnektiveFields(1, "x", NextOrderId());
        fields.Remove("pluginInstanceId");
        await AssertProblemAsync(await PostFormAsync(fields), 400, "pluginInstanceId");
    }

    [Fact]
    public async Task An_oversized_body_gets_413_and_stores_nothing()
    {
        var (id, secret, _) = await CreateInstanceAsync();
        var orderId = NextOrderId();
        var fields = KonnektiveFields(id, secret, orderId);
        fields["notes"] = new string('x', 70 * 1024);
        using var crm = Hub.Api(key: null);
        var response = await crm.PostAsync($"/api/v1/plugins/webhooks/konnektive?pluginInstanceId={id}", new FormUrlEncodedContent(fields));
        await AssertProblemAsync(response, 413, "body");
        Assert.False(await OrderExistsAsync(orderId));
        Assert.Equal("too_large", Assert.Single(await InboundAsync(id))!["outcome"]!.GetValue<string>());
    }

    public static TheoryData<string, string, string> BadFields => new()
    {
        { "orderId", "", "orderId" },
        { "orderId", "12AB", "orderId" },
        { "product1_qty", "two", "product1_qty" },
        { "product1_price", "forty", "product1_price" },
        { "customerType", "BIRTHDAY", "customerType" },
        { "emailAddress", "not-an-address", "emailAddress" },
    };

    [Theory]
    [MemberData(nameof(BadFields))]
    public async Task Bad_fields_get_a_problem_naming_the_field_and_nothing_is_stored(string key, string value, string field)
    {
        var (id, secret, _) = await CreateInstanceAsync();
        var orderId = NextOrderId();
        var fields = KonnektiveFields(id, secret, orderId);
        fields[key] = value;
        var reason = await AssertProblemAsync(await PostFormAsync(fields), 400, field);
        Assert.False(string.IsNullOrWhiteSpace(reason));
        Assert.False(await OrderExistsAsync(orderId));
        var entry = Assert.Single(await InboundAsync(id))!;
        Assert.Equal("invalid", entry["outcome"]!.GetValue<string>());
        Assert.StartsWith(field + ":", entry["reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_refusal_that_quotes_a_value_cut_inside_an_emoji_is_still_in_the_inbound_log()
    {
        var (id, secret, _) = await CreateInstanceAsync();
        var orderId = NextOrderId();
        // The error quotes the first 40 characters; the 40th is the first half of the emoji.
        var fields = KonnektiveFields(id, secret, orderId, customerType: new string('x', 39) + "\U0001F600 party");
        var reason = await AssertProblemAsync(await PostFormAsync(fields), 400, "customerType");
        Assert.Contains("'" + new string('x', 39) + "…'", reason, StringComparison.Ordinal);
        Assert.False(await OrderExistsAsync(orderId));
        var entry = Assert.Single(await InboundAsync(id))!;
        Assert.Equal("invalid", entry["outcome"]!.GetValue<string>());
        Assert.StartsWith("customerType: '" + new string('x', 39) + "…'", entry["reason"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_hundred_products_are_refused_and_nothing_is_stored()
    {
        var (id, secret, _) = await CreateInstanceAsync(importUnknownSkus: true);
        var orderId = NextOrderId();
        var fields = KonnektiveFields(id, secret, orderId);
        for (var n = 1; n <= 200; n++)
        {
            fields[$"product{n}_sku"] = $"BULK-{orderId}-{n}";
            fields[$"product{n}_qty"] = "1";
        }
        var reason = await AssertProblemAsync(await PostFormAsync(fields), 400, "products");
        Assert.Contains("100", reason);
        Assert.False(await OrderExistsAsync(orderId));
        Assert.Equal(0, await Hub.WithDbAsync(db => db.ImportedSkus.CountAsync(s => s.Sku.StartsWith($"BULK-{orderId}-"))));
    }

    [Fact]
    public async Task A_key_sent_twice_with_different_values_is_refused()
    {
        var (id, secret, _) = await CreateInstanceAsync();
        var orderId = NextOrderId();
        using var crm = Hub.Api(key: null);
        var response = await crm.PostAsync($"/api/v1/plugins/webhooks/konnektive?FirstName=Ann", new FormUrlEncodedContent(KonnektiveFields(id, secret, orderId)));
        await AssertProblemAsync(response, 400, "firstName");
        Assert.False(await OrderExistsAsync(orderId));
    }

    [Fact]
    public async Task Malformed_JSON_and_nested_values_are_refused()
    {
        var (id, secret, _) = await CreateInstanceAsync();
        using var crm = Hub.Api(key: null);
        var broken = await crm.PostAsync($"/api/v1/plugins/webhooks/konnektive?pluginInstanceId={id}&secret={secret}",
            new StringContent("{\"orderId\": ", Encoding.UTF8, "application/json"));
        await AssertProblemAsync(broken, 400, "body");
        var nested = await crm.PostAsync($"/api/v1/plugins/webhooks/konnektive?pluginInstanceId={id}&secret={secret}",
            new StringContent("{\"orderId\": \"1\", \"customerType\": \"Sale\", \"items\": [{\"sku\": \"A\"}]}", Encoding.UTF8, "application/json"));
        await AssertProblemAsync(nested, 400, "items");
    }

    [Fact]
    public async Task With_import_on_an_unknown_SKU_is_imported_unlinked_and_linking_resolves_its_order_lines()
    {
        var (id, secret, _) = await CreateInstanceAsync(importUnknownSkus: true);
        var orderId = NextOrderId();
        var sku = $"NEW-{orderId}";
        var accepted = await ReadOkAsync(await PostFormAsync(KonnektiveFields(id, secret, orderId, sku: sku)));
        Assert.Equal(sku, Assert.Single(accepted["importedSkus"]!.AsArray())!.GetValue<string>());
        Assert.Null((await OrderAsync(orderId))["order"]!["items"]![0]!["productId"]);

        var unlinked = await ReadOkAsync(await Hub.Api().GetAsync("/api/v1/skus?linked=false"));
        var row = unlinked.AsArray().Single(s => s!["sku"]!.GetValue<string>() == sku)!;
        Assert.False(row["linked"]!.GetValue<bool>());
        Assert.Equal("Starter kit", row["name"]!.GetValue<string>());
        Assert.Equal(id, row["pluginInstanceId"]!.GetValue<long>());

        // The repeat does not import it twice.
        await ReadOkAsync(await PostFormAsync(KonnektiveFields(id, secret, orderId, sku: sku)));
        Assert.Equal(1, await Hub.WithDbAsync(db => db.ImportedSkus.CountAsync(s => s.Sku == sku)));

        var link = await ReadOkAsync(await Hub.Api().PostJsonAsync($"/api/v1/skus/{sku}/link", new { productId = "P-REFILL" }));
        Assert.Equal(1, link["resolvedOrders"]!.GetValue<int>());
        Assert.Equal(1, link["resolvedLines"]!.GetValue<int>());
        Assert.Equal("P-REFILL", (await OrderAsync(orderId))["order"]!["items"]![0]!["productId"]!.GetValue<string>());
        var linked = await ReadOkAsync(await Hub.Api().GetAsync("/api/v1/skus?linked=true"));
        Assert.Contains(linked.AsArray(), s => s!["sku"]!.GetValue<string>() == sku && s["productId"]!.GetValue<string>() == "P-REFILL");
        Assert.DoesNotContain((await ReadOkAsync(await Hub.Api().GetAsync("/api/v1/skus?linked=false"))).AsArray(), s => s!["sku"]!.GetValue<string>() == sku);

        // Later postbacks with the SKU resolve straight away.
        var later = NextOrderId();
        var next = await ReadOkAsync(await PostFormAsync(KonnektiveFields(id, secret, later, sku: sku)));
        Assert.Empty(next["unknownSkus"]!.AsArray());
        Assert.Equal("P-REFILL", (await OrderAsync(later))["order"]!["items"]![0]!["productId"]!.GetValue<string>());
    }

    [Fact]
    public async Task With_import_off_an_unknown_SKU_is_kept_on_the_line_as_unknown_and_can_still_be_linked()
    {
        var (id, secret, _) = await CreateInstanceAsync(importUnknownSkus: false);
        var orderId = NextOrderId();
        var sku = $"ODD-{orderId}";
        var accepted = await ReadOkAsync(await PostFormAsync(KonnektiveFields(id, secret, orderId, sku: sku)));
        Assert.Equal(sku, Assert.Single(accepted["unknownSkus"]!.AsArray())!.GetValue<string>());
        Assert.Empty(accepted["importedSkus"]!.AsArray());
        var item = (await OrderAsync(orderId))["order"]!["items"]![0]!;
        Assert.Equal(sku, item["sku"]!.GetValue<string>());
        Assert.Null(item["productId"]);
        Assert.DoesNotContain((await ReadOkAsync(await Hub.Api().GetAsync("/api/v1/skus"))).AsArray(), s => s!["sku"]!.GetValue<string>() == sku);

        var link = await ReadOkAsync(await Hub.Api().PostJsonAsync($"/api/v1/skus/{sku}/link", new { productId = "P-KIT" }));
        Assert.Equal(1, link["resolvedLines"]!.GetValue<int>());
        Assert.Equal("P-KIT", (await OrderAsync(orderId))["order"]!["items"]![0]!["productId"]!.GetValue<string>());
    }

    [Fact]
    public async Task Linking_to_a_product_that_does_not_exist_is_refused()
    {
        await AssertProblemAsync(await Hub.Api().PostJsonAsync("/api/v1/skus/ANY-1/link", new { productId = "NOPE" }), 400, "productId");
        await AssertProblemAsync(await Hub.Api().PostJsonAsync("/api/v1/skus/ANY-1/link", new { }), 400, "productId");
        // Another organization's products are not this one's.
        await AssertProblemAsync(await Hub.Api(fixture.OtherKey).PostJsonAsync("/api/v1/skus/ANY-1/link", new { productId = "P-KIT" }), 400, "productId");
    }

    [Fact]
    public async Task Card_data_a_CRM_sends_reaches_neither_the_order_nor_the_inbound_log()
    {
        var (id, secret, _) = await CreateInstanceAsync();
        var orderId = NextOrderId();
        var fields = KonnektiveFields(id, secret, orderId);
        fields["cardNumber"] = "4111111111111111";
        fields["cardSecurityCode"] = "737";
        var accepted = await ReadOkAsync(await PostFormAsync(fields));
        Assert.Equal(["cardNumber", "cardSecurityCode"], accepted["strippedFields"]!.AsArray().Select(f => f!.GetValue<string>()).Order());
        Assert.DoesNotContain("4111111111111111", (await OrderAsync(orderId)).ToJsonString(), StringComparison.Ordinal);

        // Refused postbacks are logged too: the card number is masked there as well.
        fields["secret"] = "wrong-secret-0123456789";
        await AssertProblemAsync(await PostFormAsync(fields), 401, "secret");
        using var crm = Hub.Api(key: null);
        await AssertProblemAsync(await crm.GetAsync($"/api/v1/plugins/webhooks/konnektive?pluginInstanceId={id}&secret={secret}&orderId=12AB&customerType=sale&cc_number=4111111111111111&cvv=737"), 400, "orderId");

        var log = await InboundAsync(id);
        Assert.Equal(3, log.Count);
        foreach (var entry in log)
        {
            var payload = entry!["payload"]!.GetValue<string>();
            Assert.DoesNotContain("4111111111111111", payload, StringComparison.Ordinal);
            Assert.DoesNotContain("737", payload, StringComparison.Ordinal);
        }
        Assert.Contains("cardNumber=********", log[1]!["payload"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_inbound_log_keeps_accepted_postbacks_with_the_secret_masked_and_only_for_their_organization()
    {
        var (id, secret, _) = await CreateInstanceAsync();
        var orderId = NextOrderId();
        await ReadOkAsync(await PostFormAsync(KonnektiveFields(id, secret, orderId)));

        var entry = Assert.Single(await InboundAsync(id))!;
        Assert.Equal("accepted", entry["outcome"]!.GetValue<string>());
        Assert.Equal(orderId, entry["orderId"]!.GetValue<long>());
        Assert.Equal("new_sale", entry["customerType"]!.GetValue<string>());
        var payload = entry["payload"]!.GetValue<string>();
        Assert.Contains("firstName=Jane", payload);
        Assert.Contains("secret=********", payload);
        Assert.DoesNotContain(secret, payload, StringComparison.Ordinal);

        var all = await ReadOkAsync(await Hub.Api().GetAsync("/api/v1/inbound-log?outcome=accepted"));
        Assert.Contains(all.AsArray(), e => e!["orderId"]?.GetValue<long>() == orderId);

        using var other = Hub.Api(fixture.OtherKey);
        await AssertNotFoundAsync(await other.GetAsync($"/api/v1/plugin-instances/{id}/inbound"));
        await AssertNotFoundAsync(await other.GetAsync($"/api/v1/plugin-instances/{id}"));
        Assert.DoesNotContain((await ReadOkAsync(await other.GetAsync("/api/v1/inbound-log"))).AsArray(), e => e!["pluginInstanceId"]!.GetValue<long>() == id);
    }

    [Fact]
    public async Task Instances_are_validated_updated_and_deleted()
    {
        using var api = Hub.Api();
        var bad = await api.PostJsonAsync("/api/v1/plugin-instances", new { name = "", kind = "shopify", secret = "short", campaignId = "nope" });
        foreach (var field in new[] { "name", "kind", "secret", "campaignId" })
        {
            await AssertProblemAsync(bad, 400, field);
            bad = await api.PostJsonAsync("/api/v1/plugin-instances", new { name = "", kind = "shopify", secret = "short", campaignId = "nope" });
        }
        await AssertProblemAsync(await api.PostRawAsync("/api/v1/plugin-instances", """{"name": "x", "kind": "konnektive", "Secret": "abc"}"""), 400, "Secret");

        var (id, secret, _) = await CreateInstanceAsync(secret: "operator-chosen-secret-42");
        Assert.Equal("operator-chosen-secret-42", secret);
        var renamed = await ReadOkAsync(await api.PutJsonAsync($"/api/v1/plugin-instances/{id}", new { name = "Renamed", kind = "konnektive", campaignId = PluginHub.CampaignId, importUnknownSkus = true }));
        Assert.Equal("Renamed", renamed["name"]!.GetValue<string>());
        Assert.Equal(secret, renamed["secret"]!.GetValue<string>());
        Assert.True(renamed["importUnknownSkus"]!.GetValue<bool>());
        var rotated = await ReadOkAsync(await api.PutJsonAsync($"/api/v1/plugin-instances/{id}", new { name = "Renamed", kind = "konnektive", secret = "rotated-secret-000000" }));
        Assert.Equal("rotated-secret-000000", rotated["secret"]!.GetValue<string>());
        await AssertProblemAsync(await PostFormAsync(KonnektiveFields(id, secret, NextOrderId())), 401, "secret");

        Assert.Contains((await ReadOkAsync(await api.GetAsync("/api/v1/plugin-instances"))).AsArray(), i => i!["id"]!.GetValue<long>() == id);
        Assert.DoesNotContain((await ReadOkAsync(await Hub.Api(fixture.OtherKey).GetAsync("/api/v1/plugin-instances"))).AsArray(), i => i!["id"]!.GetValue<long>() == id);
        Assert.Equal(404, (int)(await Hub.Api(fixture.OtherKey).DeleteAsync($"/api/v1/plugin-instances/{id}")).StatusCode);

        Assert.Equal(204, (int)(await api.DeleteAsync($"/api/v1/plugin-instances/{id}")).StatusCode);
        await AssertNotFoundAsync(await api.GetAsync($"/api/v1/plugin-instances/{id}"));
        await AssertNotFoundAsync(await PostFormAsync(KonnektiveFields(id, "rotated-secret-000000", NextOrderId())));
    }

    [Fact]
    public async Task A_campaign_a_plugin_instance_uses_cannot_be_deleted()
    {
        using var api = Hub.Api();
        await ReadOkAsync(await api.PostJsonAsync("/api/v1/campaigns", new { campaignId = "PLUG-1", name = "Plugin campaign" }), HttpStatusCode.Created);
        var instance = await ReadOkAsync(await api.PostJsonAsync("/api/v1/plugin-instances", new { name = "k", kind = "konnektive", campaignId = "PLUG-1" }), HttpStatusCode.Created);
        await AssertProblemAsync(await api.DeleteAsync("/api/v1/campaigns/PLUG-1"), 409, "campaignId");
        Assert.Equal(204, (int)(await api.DeleteAsync($"/api/v1/plugin-instances/{instance["id"]}")).StatusCode);
        Assert.Equal(204, (int)(await api.DeleteAsync("/api/v1/campaigns/PLUG-1")).StatusCode);
    }

    [Fact]
    public async Task The_instance_API_needs_the_API_key_but_the_webhook_does_not()
    {
        using var anonymous = Hub.Api(key: null);
        Assert.Equal(401, (int)(await anonymous.GetAsync("/api/v1/plugin-instances")).StatusCode);
        Assert.Equal(401, (int)(await anonymous.GetAsync("/api/v1/skus")).StatusCode);
        Assert.Equal(401, (int)(await anonymous.GetAsync("/api/v1/inbound-log")).StatusCode);
        var (id, secret, _) = await CreateInstanceAsync();
        await ReadOkAsync(await PostFormAsync(KonnektiveFields(id, secret, NextOrderId())));
    }
}

public sealed class PluginWebhookSqliteTests(SqlitePluginHub fixture) : PluginWebhookTests(fixture), IClassFixture<SqlitePluginHub>;

public sealed class PluginWebhookPostgresTests(PostgresPluginHub fixture) : PluginWebhookTests(fixture), IClassFixture<PostgresPluginHub>;
