using System.Text.Json;
using Postback.Orders;

namespace Postback.Tests.Orders;

/// Each test pins a bug found in review, named after it.
public sealed class OrderParserRegressionTests
{
    private static OrderParser.Result Parse(string json) => OrderParser.Parse(JsonDocument.Parse(json).RootElement);

    [Theory]
    [InlineData("""{"orderId": true}""", "orderId")]
    [InlineData("""{"orderId": 1, "totalAmount": true}""", "totalAmount")]
    [InlineData("""{"orderId": 1, "items": [{"sku": "A", "qty": true}]}""", "items[0].qty")]
    [InlineData("""{"orderId": 1, "items": [{"sku": "A", "price": false}]}""", "items[0].price")]
    public void Json_booleans_were_accepted_as_numbers(string json, string field)
    {
        var result = Parse(json);

        Assert.Null(result.Order);
        Assert.True(result.Errors.ToDictionary().ContainsKey(field));
    }

    [Fact]
    public void Booleans_still_work_for_boolean_and_text_fields()
    {
        var order = Parse("""{"orderId": 1, "isTestCard": true, "promo": false}""").Order!;

        Assert.True(order.IsTestCard);
        Assert.Equal("0", order.Get("promo"));
    }

    [Theory]
    [InlineData("49.90000", "49.90")]
    [InlineData("49.12340000", "49.1234")]
    public void Money_with_trailing_zeros_beyond_four_decimals_was_refused(string amount, string expected)
    {
        var order = Parse($$"""{"orderId": 1, "totalAmount": "{{amount}}", "items": [{"sku": "A", "price": {{amount}}}]}""").Order;

        Assert.NotNull(order);
        Assert.Equal(expected, order.Get("totalAmount"));
        Assert.Equal(decimal.Parse(amount, System.Globalization.CultureInfo.InvariantCulture), order.Items[0].Price);
    }

    [Fact]
    public void Money_with_five_significant_decimals_is_still_refused()
    {
        Assert.True(Parse("""{"orderId": 1, "totalAmount": "49.12345"}""").Errors.ToDictionary().ContainsKey("totalAmount"));
    }

    [Theory]
    [InlineData("""{"orderId": 1, "firstName": "", "firstName": "Jane"}""", "firstName")]
    [InlineData("""{"orderId": 1, "firstName": null, "FIRSTNAME": "Jane"}""", "FIRSTNAME")]
    [InlineData("""{"orderId": 1, "items": [], "items": [{"sku": "A"}]}""", "items")]
    [InlineData("""{"orderId": 1, "items": [{"sku": "A", "SKU": "B"}]}""", "items[0].sku")]
    public void A_repeated_key_after_an_empty_one_slipped_through(string json, string field)
    {
        var result = Parse(json);

        Assert.Null(result.Order);
        Assert.True(result.Errors.ToDictionary().ContainsKey(field), string.Join("; ", result.Errors.ToDictionary().Keys));
    }
}
