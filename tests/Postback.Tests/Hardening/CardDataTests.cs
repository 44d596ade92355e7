using System.Net;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Postback.Orders;
using Postback.Plugins;
using Postback.Tests.Support;

namespace Postback.Tests.Hardening;

/// Issue 12, finding 5: a card number is recognised by its value too, not only by its field's
/// name, and dropped wherever it arrives.
public sealed class CardDataTests
{
    [Theory]
    [InlineData("4111111111111111", true)]
    [InlineData("4111 1111 1111 1111", true)]
    [InlineData("4111-1111-1111-1111", true)]
    [InlineData(" 5555555555554444 ", true)]
    [InlineData("378282246310005", true)]      // American Express, 15 digits
    [InlineData("6011111111111117", true)]
    [InlineData("4222222222222", true)]        // 13 digits
    [InlineData("4111111111111112", false)]    // fails the Luhn check
    [InlineData("411111111111", false)]        // 12 digits: too short
    [InlineData("41111111111111111111", false)] // 20 digits: too long
    [InlineData("0000000000000000", false)]    // no card number starts with 0 (placeholders do)
    [InlineData("+1 555 123 4567", false)]     // a phone number
    [InlineData("+44 4111 1111 1111 1111", false)] // a '+' makes it a phone number, not a card
    [InlineData("4111.1111.1111.1111", false)]
    [InlineData("ORD-4111111111111111", false)]
    [InlineData("10000001", false)]
    [InlineData("", false)]
    public void A_card_number_is_13_to_19_digits_with_spaces_or_dashes_passing_luhn(string value, bool card)
    {
        Assert.Equal(card, CardData.LooksLikeCardNumber(value));
    }

    [Theory]
    [InlineData("ccv")]
    [InlineData("cvc")]
    [InlineData("cvv2")]
    [InlineData("securityCode")]
    [InlineData("card_security_code")]
    [InlineData("csc")]
    [InlineData("cvn")]
    [InlineData("cardCvc")]
    [InlineData("CCV2")]
    public void Security_code_names_are_card_data(string key)
    {
        Assert.True(OrderParser.IsCardData(key));
    }

    [Fact]
    public void A_card_number_in_any_field_or_item_field_is_dropped_and_listed()
    {
        var result = OrderParser.Parse(JsonDocument.Parse("""
            {"orderId": 6001, "card": "4111111111111111", "ccv": "999", "note": "4111 1111 1111 1111", "reference": 5555555555554444,
             "phoneNumber": "5551234567", "transactionId": "4111111111111112",
             "items": [{"productId": "P1", "sku": "4111-1111-1111-1111", "name": "Kit"}]}
            """).RootElement);

        Assert.NotNull(result.Order);
        Assert.Equal(["card", "ccv", "note", "reference", "items[0].sku"], result.StrippedFields);
        Assert.Equal(["orderId", "phoneNumber", "transactionId", "isTestCard"], result.Order.Fields.Keys);
        var item = Assert.Single(result.Order.Items);
        Assert.Equal("P1", item.ProductId);
        Assert.Null(item.Sku);
    }

    [Fact]
    public void An_order_id_is_never_taken_for_a_card_number()
    {
        // The order's key: dropping it would refuse the order; a CRM's order id is not a card.
        var result = OrderParser.Parse(JsonDocument.Parse("""{"orderId": 4111111111111111}""").RootElement);
        Assert.Equal(4111111111111111, result.Order!.OrderId);
        Assert.Empty(result.StrippedFields);
    }

    [Fact]
    public async Task Card_values_reach_neither_the_database_nor_the_answer_through_events_and_postbacks()
    {
        await using var hub = await HubFactory.StartAsync();
        using var api = hub.Api();

        var accepted = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/events", new
        {
            type = "new_sale",
            order = new Dictionary<string, object> { ["orderId"] = 6101, ["card"] = "4111111111111111", ["ccv"] = "999", ["firstName"] = "Jane" },
        }), HttpStatusCode.Accepted);
        Assert.Equal(["card", "ccv"], accepted["strippedFields"]!.AsArray().Select(f => f!.GetValue<string>()));

        var instance = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/plugin-instances", new { name = "CRM", kind = "konnektive" }), HttpStatusCode.Created);
        using var crm = hub.Api(key: null);
        var postback = await crm.PostAsync("/api/v1/plugins/webhooks/konnektive", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["pluginInstanceId"] = instance["id"]!.ToString(),
            ["secret"] = instance["secret"]!.GetValue<string>(),
            ["orderId"] = "6102",
            ["customerType"] = "NEW_SALE",
            ["cardNo2"] = "4111 1111 1111 1111",
            ["ccv"] = "999",
            ["product1_sku"] = "5555555555554444",
            ["product1_id"] = "P1",
        }));
        var answer = await Json.ReadOkAsync(postback);
        Assert.Contains("cardNo2", answer["strippedFields"]!.AsArray().Select(f => f!.GetValue<string>()));
        Assert.Contains("ccv", answer["strippedFields"]!.AsArray().Select(f => f!.GetValue<string>()));

        // A refused postback's payload is logged too: its card values are masked as well.
        await crm.PostAsync("/api/v1/plugins/webhooks/konnektive", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["pluginInstanceId"] = instance["id"]!.ToString(), ["secret"] = "wrong", ["orderId"] = "6103", ["note"] = "4111-1111-1111-1111",
        }));

        var stored = await hub.WithDbAsync(async db => string.Join("\n",
            (await db.Orders.Select(o => o.Data).ToListAsync())
            .Concat(await db.InboundLog.Select(l => l.Payload + " " + l.Reason).ToListAsync())));
        Assert.Contains("6102", stored, StringComparison.Ordinal);
        foreach (var digits in new[] { "4111111111111111", "4111 1111 1111 1111", "4111+1111", "4111%20", "4111-1111", "5555555555554444", "999" })
        {
            Assert.DoesNotContain(digits, stored, StringComparison.Ordinal);
        }
    }
}
