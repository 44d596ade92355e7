using Postback.Plugins;

namespace Postback.Tests.Plugins;

/// The pure part of receiving: flat CRM fields to an order event.
public sealed class PostbackMapperTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 23, 10, 0, 0, TimeSpan.Zero);

    private static PostbackMapper.Result Map(params (string Key, string Value)[] fields) =>
        PostbackMapper.Map(fields.ToDictionary(f => f.Key, f => f.Value, StringComparer.OrdinalIgnoreCase), 7, "259", Now);

    [Theory]
    [InlineData("NEW_SALE", "new_sale")]
    [InlineData("New Sale", "new_sale")]
    [InlineData("Sale", "new_sale")]
    [InlineData("new-sale", "new_sale")]
    [InlineData("Partial", "partial")]
    [InlineData("PARTIAL", "partial")]
    [InlineData("Upsell", "upsell")]
    [InlineData("Rebill", "recurring_order")]
    [InlineData("Declined", "decline")]
    [InlineData("Partial Refund", "partial_refund")]
    [InlineData("chargeback", "chargeback")]
    [InlineData("abandoned_cart", "abandoned_cart")]
    public void CRM_spellings_of_customer_types_map_to_ours(string spelling, string expected)
    {
        var result = Map(("orderId", "1001"), ("customerType", spelling));
        Assert.False(result.Errors.Any, string.Join("; ", result.Errors.ToDictionary().Select(e => e.Key + ": " + e.Value[0])));
        Assert.Equal(expected, result.Event!.Type);
    }

    [Fact]
    public void An_unknown_customer_type_is_refused_naming_the_field()
    {
        var result = Map(("orderId", "1001"), ("customerType", "BIRTHDAY_PARTY"));
        Assert.Null(result.Event);
        Assert.Contains("BIRTHDAY_PARTY", result.Errors.ToDictionary()["customerType"][0]);
    }

    [Fact]
    public void Without_a_customer_type_the_order_status_decides_or_the_field_is_required()
    {
        Assert.Equal("partial", Map(("orderId", "1"), ("orderStatus", "PARTIAL")).Event!.Type);
        Assert.Equal("new_sale", Map(("orderId", "1"), ("orderStatus", "COMPLETE")).Event!.Type);
        var missing = Map(("orderId", "1"));
        Assert.True(missing.Errors.ToDictionary().ContainsKey("customerType"));
    }

    [Fact]
    public void Product_lines_of_any_number_become_items_in_line_order_and_empty_lines_are_skipped()
    {
        var result = Map(
            ("orderId", "1002"), ("customerType", "NEW_SALE"),
            ("product12_sku", "LATE"), ("product12_qty", "3"), ("product12_price", "1.50"),
            ("product1_sku", "FIRST"), ("product1_qty", "1"), ("product1_price", "$1,049.95"), ("product1_name", "Kit"),
            ("product2_sku", ""), ("product2_qty", ""), ("product2_price", ""));
        var items = result.Event!.Order.Items;
        Assert.Equal(2, items.Count);
        Assert.Equal(("FIRST", 1, 1049.95m, "Kit"), (items[0].Sku!, items[0].Qty, items[0].Price!.Value, items[0].Name!));
        Assert.Equal(("LATE", 3, 1.50m), (items[1].Sku!, items[1].Qty, items[1].Price!.Value));
    }

    [Theory]
    [InlineData("product1_qty", "two", "product1_qty")]
    [InlineData("product1_qty", "1.5", "product1_qty")]
    [InlineData("product1_price", "cheap", "product1_price")]
    [InlineData("Product1_Price", "12,34,5", "Product1_Price")]
    public void Bad_line_values_are_refused_under_the_name_the_CRM_sent(string key, string value, string field)
    {
        var result = Map(("orderId", "1003"), ("customerType", "Sale"), ("product1_sku", "A"), (key, value));
        Assert.Null(result.Event);
        Assert.True(result.Errors.ToDictionary().ContainsKey(field), string.Join(", ", result.Errors.ToDictionary().Keys));
    }

    [Fact]
    public void A_line_without_a_sku_or_product_id_is_refused()
    {
        var result = Map(("orderId", "1004"), ("customerType", "Sale"), ("product3_qty", "2"));
        Assert.True(result.Errors.ToDictionary().ContainsKey("product3_sku"));
    }

    [Fact]
    public void More_than_100_product_lines_are_refused()
    {
        var fields = new List<(string, string)> { ("orderId", "1005"), ("customerType", "Sale") };
        for (var n = 1; n <= 200; n++)
        {
            fields.Add(($"product{n}_sku", $"S{n}"));
        }
        var result = Map([.. fields]);
        Assert.Null(result.Event);
        Assert.Contains("200", result.Errors.ToDictionary()["products"][0]);
    }

    [Theory]
    [InlineData("2024-07-31 16:24:58", "2024-07-31 16:24:58")]
    [InlineData("07/31/2024 04:24:58 PM", "2024-07-31 16:24:58")]
    [InlineData("7/31/2024 4:24:58 PM", "2024-07-31 16:24:58")]
    [InlineData("2024-07-31T14:24:58Z", "2024-07-31 14:24:58")]
    public void CRM_date_formats_become_canonical(string sent, string stored)
    {
        var result = Map(("orderId", "1006"), ("customerType", "Sale"), ("dateCreated", sent));
        Assert.Equal(stored, result.Event!.Order.Get("dateCreated"));
    }

    [Fact]
    public void The_event_id_is_the_same_for_the_same_postback_whatever_the_key_case_and_differs_when_the_order_changes()
    {
        var a = Map(("orderId", "1007"), ("customerType", "Sale"), ("postalCode", "10001"), ("firstName", "Jane")).Event!;
        var b = Map(("ORDERID", "1007"), ("customerType", "NEW_SALE"), ("postalcode", "10001"), ("firstname", "Jane")).Event!;
        var c = Map(("orderId", "1007"), ("customerType", "Sale"), ("postalCode", "10002"), ("firstName", "Jane")).Event!;
        var d = Map(("orderId", "1007"), ("customerType", "Upsell"), ("postalCode", "10001"), ("firstName", "Jane")).Event!;
        Assert.Equal(a.EventId, b.EventId);
        Assert.NotEqual(a.EventId, c.EventId);
        Assert.NotEqual(a.EventId, d.EventId);
        Assert.StartsWith("pi7-1007-new_sale-", a.EventId);
        Assert.True(a.EventId!.Length <= 100);
    }

    [Fact]
    public void The_instance_campaign_fills_in_a_missing_campaign_and_control_fields_stay_off_the_order()
    {
        var order = Map(("orderId", "1008"), ("customerType", "Sale"), ("organizationId", "1"), ("pluginInstanceId", "7")).Event!.Order;
        Assert.Equal("259", order.CampaignId);
        Assert.Null(order.Get("organizationId"));
        Assert.Null(order.Get("pluginInstanceId"));
        Assert.Null(order.Get("customerType"));
        var own = Map(("orderId", "1008"), ("customerType", "Sale"), ("campaignId", "300")).Event!.Order;
        Assert.Equal("300", own.CampaignId);
    }

    [Fact]
    public void Card_data_is_dropped_and_unusable_field_names_are_ignored_not_refused()
    {
        var result = Map(("orderId", "1009"), ("customerType", "Sale"), ("cardNumber", "4111111111111111"), ("custom-field", "x"));
        Assert.NotNull(result.Event);
        Assert.Contains("cardNumber", result.StrippedFields);
        Assert.Contains("custom-field", result.IgnoredFields);
        Assert.DoesNotContain(result.Event.Order.Fields.Values, v => v.Contains("4111", StringComparison.Ordinal));
    }

    [Fact]
    public void A_missing_or_non_numeric_order_id_is_refused()
    {
        Assert.True(Map(("customerType", "Sale")).Errors.ToDictionary().ContainsKey("orderId"));
        Assert.True(Map(("orderId", "ABC-1"), ("customerType", "Sale")).Errors.ToDictionary().ContainsKey("orderId"));
    }
}
