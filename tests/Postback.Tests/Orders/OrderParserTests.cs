using System.Text.Json;
using Postback.Orders;

namespace Postback.Tests.Orders;

/// OrderParser.Parse: an order as a client sends it → OrderData or errors naming each bad field.
public sealed class OrderParserTests
{
    private const string MoneyReason = "must be a decimal amount such as 49.95";
    private const string BoolReason = "must be true/false or 1/0";
    private const string IdReason = "must be a positive whole number (at most 19 digits)";
    private const string DateReason = "must be a date and time such as 2024-07-31 16:24:58 or 2024-07-31T16:24:58Z";
    private const string EmailReason = "must be an e-mail address";
    private const string ControlReason = "must not contain control characters (such as line breaks)";
    private const string ScalarReason = "must be a string, number or boolean";
    private const string QtyReason = "must be a whole number from 0 to 100000";
    private const string DerivedReason = "is computed by Postback and cannot be sent";

    private static OrderParser.Result Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return OrderParser.Parse(document.RootElement.Clone());
    }

    private static OrderData Valid(string json)
    {
        var result = Parse(json);
        Assert.True(result.Order is not null, "expected a valid order, got: " + Describe(result));
        Assert.False(result.Errors.Any);
        return result.Order!;
    }

    private static string Describe(OrderParser.Result result) =>
        string.Join("; ", result.Errors.ToDictionary().Select(e => $"{e.Key}: {string.Join(", ", e.Value)}"));

    private static string Json(Dictionary<string, object?> order) => JsonSerializer.Serialize(order);

    // ---- card data -------------------------------------------------------------------------------

    [Theory]
    [InlineData("cardNumber")]
    [InlineData("card_number")]
    [InlineData("ccNumber")]
    [InlineData("cvv")]
    [InlineData("creditCardNumber")]
    [InlineData("CARD-NUMBER")]
    [InlineData("CVV2")]
    [InlineData("cvc")]
    [InlineData("cc_num")]
    [InlineData("cardNum")]
    [InlineData("securityCode")]
    [InlineData("card_security_code")]
    [InlineData("cardVerificationValue")]
    [InlineData("creditCard")]
    [InlineData("pan")]
    [InlineData("cc")]
    [InlineData("ccNo")]
    [InlineData("payment_card_cvv")]
    public void Card_data_is_stripped_and_reported(string key)
    {
        var json = Json(new() { ["orderId"] = 6908, [key] = "4111111111111111", ["firstName"] = "Jane" });

        var result = Parse(json);

        Assert.NotNull(result.Order);
        Assert.Equal([key], result.StrippedFields);
        Assert.False(result.Order.Fields.ContainsKey(key));
        Assert.DoesNotContain(result.Order.Fields.Values, v => v.Contains("4111"));
        Assert.Equal("Jane", result.Order.Get("firstName"));
        Assert.True(OrderParser.IsCardData(key));
    }

    [Fact]
    public void Several_card_fields_are_all_stripped_in_order_even_when_the_order_has_errors()
    {
        var result = Parse("""{"cardNumber": "4111111111111111", "orderId": "x", "cvv": 123, "card_expiry_cvv": "1"}""");

        Assert.Null(result.Order);
        Assert.Equal(["cardNumber", "cvv", "card_expiry_cvv"], result.StrippedFields);
        Assert.Equal(["orderId"], result.Errors.ToDictionary().Keys);
    }

    [Theory]
    [InlineData("firstName")]
    [InlineData("campaignId")]
    [InlineData("discountAmount")]
    [InlineData("affiliateSubId")]
    [InlineData("ccExpiryMonth")]
    public void Ordinary_fields_are_not_card_data(string key)
    {
        Assert.False(OrderParser.IsCardData(key));
    }

    // ---- errors ----------------------------------------------------------------------------------

    public static TheoryData<string, string, string> ErrorCases => new()
    {
        // orderId: required, positive, digits only.
        { """{}""", "orderId", "is required" },
        { """{"firstName": "Jane"}""", "orderId", "is required" },
        { """{"orderId": null}""", "orderId", "is required" },
        { """{"orderId": ""}""", "orderId", "is required" },
        { """{"orderId": "   "}""", "orderId", "is required" },
        { """{"orderId": 0}""", "orderId", IdReason },
        { """{"orderId": "0"}""", "orderId", IdReason },
        { """{"orderId": -5}""", "orderId", IdReason },
        { """{"orderId": "-5"}""", "orderId", IdReason },
        { """{"orderId": "+5"}""", "orderId", IdReason },
        { """{"orderId": 1.5}""", "orderId", IdReason },
        { """{"orderId": 1.0}""", "orderId", IdReason },
        { """{"orderId": 1e3}""", "orderId", IdReason },
        { """{"orderId": "12a"}""", "orderId", IdReason },
        { """{"orderId": "1 2"}""", "orderId", IdReason },
        { """{"orderId": "١٢"}""", "orderId", IdReason },
        { """{"orderId": "99999999999999999999"}""", "orderId", IdReason },
        { """{"orderId": "9999999999999999999"}""", "orderId", IdReason },
        { """{"orderId": {"id": 1}}""", "orderId", ScalarReason },
        { """{"orderId": [1]}""", "orderId", ScalarReason },

        // E-mail.
        { """{"orderId": 1, "emailAddress": "jane"}""", "emailAddress", EmailReason },
        { """{"orderId": 1, "emailAddress": "jane@"}""", "emailAddress", EmailReason },
        { """{"orderId": 1, "emailAddress": "Jane <jane@example.com>"}""", "emailAddress", EmailReason },
        { """{"orderId": 1, "emailAddress": "jane doe@example.com"}""", "emailAddress", EmailReason },
        { """{"orderId": 1, "emailAddress": "a@b@example.com"}""", "emailAddress", EmailReason },
        { """{"orderId": 1, "EMAILADDRESS": "nope"}""", "emailAddress", EmailReason },

        // Money.
        { """{"orderId": 1, "totalAmount": "49,95"}""", "totalAmount", MoneyReason },
        { """{"orderId": 1, "totalAmount": "abc"}""", "totalAmount", MoneyReason },
        { """{"orderId": 1, "totalAmount": "$49.95"}""", "totalAmount", MoneyReason },
        { """{"orderId": 1, "totalAmount": 1e3}""", "totalAmount", MoneyReason },
        { """{"orderId": 1, "totalAmount": "1.23456"}""", "totalAmount", MoneyReason },
        { """{"orderId": 1, "totalAmount": "1000000000"}""", "totalAmount", MoneyReason },

        // Boolean.
        { """{"orderId": 1, "isTestCard": "maybe"}""", "isTestCard", BoolReason },
        { """{"orderId": 1, "isTestCard": 2}""", "isTestCard", BoolReason },

        // Dates.
        { """{"orderId": 1, "dateCreated": "31/07/2024"}""", "dateCreated", DateReason },
        { """{"orderId": 1, "dateCreated": "2024-13-01 00:00:00"}""", "dateCreated", DateReason },
        { """{"orderId": 1, "dateCreated": "2024-02-30"}""", "dateCreated", DateReason },
        { """{"orderId": 1, "dateCreated": "yesterday"}""", "dateCreated", DateReason },
        { """{"orderId": 1, "dateCreated": "July 31, 2024"}""", "dateCreated", DateReason },
        { """{"orderId": 1, "dateUpdated": 20240731}""", "dateUpdated", DateReason },

        // Currency.
        { """{"orderId": 1, "currencyCode": "US"}""", "currencyCode", "must be a three-letter ISO 4217 currency code such as USD" },
        { """{"orderId": 1, "currencyCode": "US1"}""", "currencyCode", "must be a three-letter ISO 4217 currency code such as USD" },

        // Text: length and control characters.
        { Json(new() { ["orderId"] = 1, ["firstName"] = new string('x', 101) }), "firstName", "must be at most 100 characters" },
        { Json(new() { ["orderId"] = 1, ["postalCode"] = new string('9', 21) }), "postalCode", "must be at most 20 characters" },
        { Json(new() { ["orderId"] = 1, ["note"] = new string('x', 1001) }), "note", "must be at most 1000 characters" },
        { Json(new() { ["orderId"] = 1, ["emailAddress"] = new string('a', 250) + "@example.com" }), "emailAddress", EmailReason },
        { """{"orderId": 1, "firstName": "Jane\nDoe"}""", "firstName", ControlReason },
        { """{"orderId": 1, "lastName": "Do\re"}""", "lastName", ControlReason },
        { """{"orderId": 1, "address1": "1 Main\tSt"}""", "address1", ControlReason },
        { """{"orderId": 1, "city": "Ber\u0000lin"}""", "city", ControlReason },
        { """{"orderId": 1, "note": "a\u0085b"}""", "note", ControlReason },
        { """{"orderId": 1, "note": {"nested": true}}""", "note", ScalarReason },
        { """{"orderId": 1, "note": ["a"]}""", "note", ScalarReason },

        // Line items.
        { """{"orderId": 1, "items": "p1"}""", "items", "must be an array of line items" },
        { """{"orderId": 1, "items": {"productId": "p1"}}""", "items", "must be an array of line items" },
        { Json(new() { ["orderId"] = 1, ["items"] = Enumerable.Range(1, 101).Select(i => new { sku = $"S{i}" }).ToArray() }), "items", "an order holds at most 100 line items" },
        { """{"orderId": 1, "items": [{"name": "Widget"}]}""", "items[0]", "needs a productId or a sku" },
        { """{"orderId": 1, "items": [{"productId": "p1"}, {"productId": " ", "sku": ""}]}""", "items[1]", "needs a productId or a sku" },
        { """{"orderId": 1, "items": ["p1"]}""", "items[0]", "must be an object" },
        { """{"orderId": 1, "items": [{"sku": "S", "qty": "two"}]}""", "items[0].qty", QtyReason },
        { """{"orderId": 1, "items": [{"productId": "p1"}, {"sku": "S", "qty": "two"}]}""", "items[1].qty", QtyReason },
        { """{"orderId": 1, "items": [{"sku": "S", "qty": -1}]}""", "items[0].qty", QtyReason },
        { """{"orderId": 1, "items": [{"sku": "S", "qty": 1.5}]}""", "items[0].qty", QtyReason },
        { """{"orderId": 1, "items": [{"sku": "S", "qty": 100001}]}""", "items[0].qty", QtyReason },
        { """{"orderId": 1, "items": [{"sku": "S", "QTY": "x"}]}""", "items[0].qty", QtyReason },
        { """{"orderId": 1, "items": [{"sku": "S", "price": "cheap"}]}""", "items[0].price", MoneyReason },
        { """{"orderId": 1, "items": [{"sku": "S", "recurring": "sometimes"}]}""", "items[0].recurring", BoolReason },
        { """{"orderId": 1, "items": [{"sku": "S", "color": "red"}]}""", "items[0].color", "is not a line item field; items take productId, sku, name, qty, price, recurring" },
        { """{"orderId": 1, "items": [{"sku": "S", "name": "a\nb"}]}""", "items[0].name", ControlReason },
        { Json(new() { ["orderId"] = 1, ["items"] = new[] { new { sku = new string('s', 65) } } }), "items[0].sku", "must be at most 64 characters" },
        { """{"orderId": 1, "items": [{"sku": {"a": 1}}]}""", "items[0].sku", ScalarReason },

        // Derived fields are computed, not taken.
        { """{"orderId": 1, "orderDate": "2024-07-31 16:24:58"}""", "orderDate", DerivedReason + "; send dateCreated" },
        { """{"orderId": 1, "customerType": "new_sale"}""", "customerType", DerivedReason },
        { """{"orderId": 1, "campaignName": "Test Lander"}""", "campaignName", DerivedReason },
        { """{"orderId": 1, "productCount": 2}""", "productCount", DerivedReason },
        { """{"orderId": 1, "ORDERDATE": "2024-07-31"}""", "ORDERDATE", DerivedReason + "; send dateCreated" },

        // productN_ fields.
        { """{"orderId": 1, "product1_sku": "S"}""", "product1_sku", "line items go in items[], not in productN_ fields" },
        { """{"orderId": 1, "PRODUCT2_QTY": 3}""", "PRODUCT2_QTY", "line items go in items[], not in productN_ fields" },
        { """{"orderId": 1, "product12_price": "1.00"}""", "product12_price", "line items go in items[], not in productN_ fields" },

        // Field names and duplicates.
        { """{"orderId": 1, "first name": "Jane"}""", "first name", "is not a valid field name (a letter, then letters, digits or underscores, at most 64)" },
        { """{"orderId": 1, "1st": "x"}""", "1st", "is not a valid field name (a letter, then letters, digits or underscores, at most 64)" },
        { Json(new() { ["orderId"] = 1, ["x" + new string('y', 64)] = "v" }), "x" + new string('y', 64), "is not a valid field name (a letter, then letters, digits or underscores, at most 64)" },
        { """{"orderId": 1, "firstName": "Jane", "FIRSTNAME": "Janet"}""", "FIRSTNAME", "is given more than once" },
        { """{"orderId": 1, "items": [{"sku": "A"}], "items": [{"sku": "B"}]}""", "items", "is given more than once" },
    };

    [Theory]
    [MemberData(nameof(ErrorCases))]
    public void Bad_input_is_refused_with_the_exact_field_path(string json, string path, string reason)
    {
        var result = Parse(json);

        Assert.Null(result.Order);
        var errors = result.Errors.ToDictionary();
        Assert.True(errors.ContainsKey(path), $"expected an error at '{path}', got: {Describe(result)}");
        Assert.Equal([reason], errors[path]);
        Assert.Equal([path], errors.Keys);
    }

    [Fact]
    public void Every_bad_field_is_reported_at_once()
    {
        var result = Parse("""
            {"orderId": 0, "emailAddress": "x", "totalAmount": "y", "orderDate": "2024-07-31",
             "items": [{"sku": "S", "qty": "q"}, {"name": "n"}]}
            """);

        Assert.Null(result.Order);
        Assert.Equal(["orderId", "emailAddress", "totalAmount", "orderDate", "items[0].qty", "items[1]"], result.Errors.ToDictionary().Keys);
    }

    [Fact]
    public void More_than_100_extra_fields_are_refused()
    {
        var order = new Dictionary<string, object?> { ["orderId"] = 1 };
        for (var i = 1; i <= 101; i++)
        {
            order[$"extra{i}"] = "v";
        }

        var result = Parse(Json(order));

        Assert.Null(result.Order);
        Assert.Equal(["extra101"], result.Errors.ToDictionary().Keys);
        Assert.Equal(["an order holds at most 100 extra fields"], result.Errors.ToDictionary()["extra101"]);

        order.Remove("extra101");
        Assert.Equal(102, Valid(Json(order)).Fields.Count); // orderId, isTestCard, 100 extras
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("\"order\"")]
    [InlineData("42")]
    [InlineData("null")]
    public void Anything_but_an_object_is_refused(string json)
    {
        var result = Parse(json);

        Assert.Null(result.Order);
        Assert.Equal(["must be a JSON object"], result.Errors.ToDictionary()[""]);
    }

    // BUG (OrderParser.TryScalarText / property.Name): a JSON string holding a lone UTF-16
    // surrogate escape is valid JSON syntax, but JsonElement.GetString() throws
    // InvalidOperationException on it, so Parse throws instead of reporting the field, and the
    // orders/events endpoints answer 500 instead of 400.
    [Theory]
    [InlineData("""{"orderId": 1, "firstName": "\ud800"}""", "firstName")]
    [InlineData("""{"orderId": 1, "note": "x\udc00y"}""", "note")]
    [InlineData("""{"orderId": 1, "items": [{"sku": "\ud800"}]}""", "items[0].sku")]
    public void A_lone_surrogate_is_a_field_error_not_an_exception(string json, string path)
    {
        var result = Parse(json);

        Assert.Null(result.Order);
        Assert.True(result.Errors.ToDictionary().ContainsKey(path), Describe(result));
    }

    // ---- dates -----------------------------------------------------------------------------------

    [Theory]
    [InlineData("2024-07-31 16:24:58", "2024-07-31 16:24:58")]
    [InlineData(" 2024-07-31 16:24:58 ", "2024-07-31 16:24:58")]
    [InlineData("2024-07-31T16:24:58", "2024-07-31 16:24:58")]
    [InlineData("2024-07-31 16:24", "2024-07-31 16:24:00")]
    [InlineData("2024-07-31", "2024-07-31 00:00:00")]
    [InlineData("2024-07-31 16:24:58.123", "2024-07-31 16:24:58")]
    [InlineData("07/31/2024 16:24:58", "2024-07-31 16:24:58")]
    [InlineData("07/31/2024", "2024-07-31 00:00:00")]
    [InlineData("2024-07-31T16:24:58Z", "2024-07-31 16:24:58")]
    [InlineData("2024-07-31T16:24:58z", "2024-07-31 16:24:58")]
    [InlineData("2024-07-31T16:24:58.5Z", "2024-07-31 16:24:58")]
    [InlineData("2024-07-31T16:24:58+02:00", "2024-07-31 14:24:58")]
    [InlineData("2024-07-31 16:24:58+02:00", "2024-07-31 14:24:58")]
    [InlineData("2024-07-31T16:24:58-05:00", "2024-07-31 21:24:58")]
    [InlineData("2024-07-31T23:30:00-02:00", "2024-08-01 01:30:00")]
    [InlineData("2024-08-01T01:00:00+05:30", "2024-07-31 19:30:00")]
    [InlineData("2024-07-31T16:24:58+00:00", "2024-07-31 16:24:58")]
    public void Dates_without_offset_are_kept_and_dates_with_one_become_UTC(string input, string expected)
    {
        var order = Valid(Json(new() { ["orderId"] = 1, ["dateCreated"] = input, ["dateUpdated"] = input }));

        Assert.Equal(expected, order.Get("dateCreated"));
        Assert.Equal(expected, order.Get("dateUpdated"));
        Assert.True(OrderParser.TryParseDate(input, out var canonical));
        Assert.Equal(expected, canonical);
    }

    // ---- normalization ---------------------------------------------------------------------------

    public static TheoryData<string, string, string, string> NormalizeCases => new()
    {
        // key as sent, JSON value, name stored under, value stored
        { "firstName", "\"Jane\"", "firstName", "Jane" },
        { "FIRSTNAME", "\"Jane\"", "firstName", "Jane" },
        { "firstname", "\"  Jane  \"", "firstName", "Jane" },
        { "EmailAddress", "\"jane@example.com\"", "emailAddress", "jane@example.com" },
        { "CampaignID", "259", "campaignId", "259" },
        { "campaignId", "\"259\"", "campaignId", "259" },
        { "totalAmount", "49.9", "totalAmount", "49.90" },
        { "totalAmount", "\"49.95\"", "totalAmount", "49.95" },
        { "totalAmount", "\"-5\"", "totalAmount", "-5.00" },
        { "totalAmount", "0.1234", "totalAmount", "0.1234" },
        { "TOTALAMOUNT", "\" 12 \"", "totalAmount", "12.00" },
        { "isTestCard", "true", "isTestCard", "1" },
        { "isTestCard", "\"yes\"", "isTestCard", "1" },
        { "isTestCard", "\"Y\"", "isTestCard", "1" },
        { "isTestCard", "1", "isTestCard", "1" },
        { "isTestCard", "false", "isTestCard", "0" },
        { "isTestCard", "\"N\"", "isTestCard", "0" },
        { "isTestCard", "\"0\"", "isTestCard", "0" },
        { "currencyCode", "\"usd\"", "currencyCode", "USD" },
        { "phoneNumber", "5551234567", "phoneNumber", "5551234567" },
        { "address1", "\"1 Main St\"", "address1", "1 Main St" },
        { "lastName", "\"Müller\"", "lastName", "Müller" },
        // Extra fields keep their name and their text.
        { "affiliateSubId", "\"sub-42\"", "affiliateSubId", "sub-42" },
        { "rating", "4.50", "rating", "4.50" },
        { "optIn", "true", "optIn", "1" },
        { "optOut", "false", "optOut", "0" },
        { "utm_source", "\" google \"", "utm_source", "google" },
        { "product0_sku", "\"x\"", "product0_sku", "x" },
    };

    [Theory]
    [MemberData(nameof(NormalizeCases))]
    public void Known_fields_are_matched_case_insensitively_and_normalized(string key, string valueJson, string storedName, string storedValue)
    {
        var order = Valid($$"""{"orderId": 7, "{{key}}": {{valueJson}}}""");

        Assert.Contains(storedName, order.Fields.Keys);
        Assert.Equal(storedValue, order.Fields[storedName]);
        Assert.Equal(storedValue, order.Get(storedName.ToUpperInvariant()));
    }

    [Theory]
    [InlineData("6908", 6908L)]
    [InlineData("0042", 42L)]
    [InlineData(" 17 ", 17L)]
    [InlineData("9223372036854775807", long.MaxValue)]
    public void OrderId_is_stored_as_a_number(string text, long expected)
    {
        var order = Valid(Json(new() { ["orderId"] = text }));

        Assert.Equal(expected, order.OrderId);
        Assert.Equal(expected.ToString(System.Globalization.CultureInfo.InvariantCulture), order.Get("orderId"));
        Assert.Equal(order.Get("orderId"), order.OrderIdText);
    }

    [Fact]
    public void A_full_order_parses_with_its_items()
    {
        var order = Valid("""
            {
              "orderId": 6908,
              "customerId": "C-77",
              "campaignId": "259",
              "firstName": "Jane",
              "address2": "",
              "shipAddress2": null,
              "affiliateSubId": "sub-42",
              "items": [
                { "productId": "p1", "sku": "SKU-1", "name": " Widget ", "qty": 2, "price": 49.9, "recurring": true },
                { "SKU": "SKU-2", "Qty": "3", "Price": "5", "Recurring": "no" },
                { "productId": 12 }
              ]
            }
            """);

        Assert.Equal(6908, order.OrderId);
        Assert.Equal("C-77", order.CustomerId);
        Assert.Equal("259", order.CampaignId);
        Assert.False(order.IsTestCard);
        Assert.Equal("0", order.Get("isTestCard"));
        Assert.Null(order.Get("address2"));
        Assert.Null(order.Get("shipAddress2"));
        Assert.Equal("sub-42", order.Get("affiliateSubId"));
        Assert.Equal(
            [
                new OrderItem("p1", "SKU-1", "Widget", 2, 49.9m, true),
                new OrderItem(null, "SKU-2", null, 3, 5m, false),
                new OrderItem("12", null, null, 1, null, false),
            ],
            order.Items);
        Assert.True(order.HasRecurringItem);
        Assert.Equal(["orderId", "customerId", "campaignId", "firstName", "affiliateSubId", "isTestCard"], order.Fields.Keys);
    }

    [Theory]
    [InlineData("""{"orderId": 1}""", 0)]
    [InlineData("""{"orderId": 1, "items": null}""", 0)]
    [InlineData("""{"orderId": 1, "items": []}""", 0)]
    [InlineData("""{"orderId": 1, "items": [{"sku": "S", "qty": 0}]}""", 1)]
    [InlineData("""{"orderId": 1, "items": [{"sku": "S", "qty": "100000"}]}""", 1)]
    public void Items_are_optional(string json, int count)
    {
        Assert.Equal(count, Valid(json).Items.Count);
    }

    [Fact]
    public void An_order_of_100_items_is_accepted()
    {
        var order = Valid(Json(new() { ["orderId"] = 1, ["items"] = Enumerable.Range(1, 100).Select(i => new { sku = $"S{i}" }).ToArray() }));

        Assert.Equal(100, order.Items.Count);
        Assert.Equal("S100", order.Items[99].Sku);
    }

    [Fact]
    public void Extra_fields_are_kept()
    {
        var order = Valid("""{"orderId": 1, "affiliateSubId": "sub-42", "clickId": "abc123", "score": 7, "vip": true}""");

        Assert.Equal("sub-42", order.Get("affiliateSubId"));
        Assert.Equal("abc123", order.Get("clickId"));
        Assert.Equal("7", order.Get("score"));
        Assert.Equal("1", order.Get("vip"));
    }

    [Theory]
    [InlineData("49.9", true, "49.90")]
    [InlineData("-0.5", true, "-0.50")]
    [InlineData("999999999.9999", true, "999999999.9999")]
    [InlineData("1000000000", false, "")]
    [InlineData("1.00001", false, "")]
    [InlineData("1,000.00", false, "")]
    [InlineData("", false, "")]
    public void Money_parses_and_formats(string raw, bool ok, string formatted)
    {
        Assert.Equal(ok, OrderParser.TryParseMoney(raw, out var amount));
        if (ok)
        {
            Assert.Equal(formatted, OrderParser.FormatMoney(amount));
        }
    }
}
