using System.Text.Json;
using Postback.ExportProfiles;
using Postback.Orders;
using Postback.Outbound;

namespace Postback.Tests.ExportProfiles;

/// RequestRenderer.Render as a pure function: profile mappings + order → the exact request
/// (PRODUCT.md section 3, seeds 001 and 003).
public sealed class RequestRendererTests
{
    private const string Url = "https://postingmydata.com/partials.php";

    private const string JaneJson = """
        {
          "orderId": 6908,
          "customerId": "C-77",
          "campaignId": "259",
          "firstName": "Jane",
          "lastName": "Doe",
          "emailAddress": "jane@example.com",
          "dateCreated": "2024-07-31 16:24:58",
          "address1": "1 Main St",
          "totalAmount": 59.9,
          "affiliateSubId": "sub-42",
          "items": [
            { "productId": "p1", "sku": "SKU-1", "name": "Widget", "qty": 2, "price": 49.9 },
            { "productId": "p2", "sku": "SKU-2", "name": "Gadget Pro", "qty": 1, "price": "5" },
            { "sku": "SKU-3" }
          ]
        }
        """;

    private static readonly RenderContext NewSale = new(CustomerTypes.NewSale);

    /// An order as a client would send it, through the real parser.
    internal static OrderData Order(string json)
    {
        using var document = JsonDocument.Parse(json);
        var result = OrderParser.Parse(document.RootElement);
        Assert.True(result.Order is not null,
            "the test order does not parse: " + string.Join("; ", result.Errors.ToDictionary().Select(e => $"{e.Key}: {string.Join(", ", e.Value)}")));
        return result.Order!;
    }

    private static OrderData Jane() => Order(JaneJson);

    private static KeyValuePair<string, string>[] H(params (string Name, string Value)[] headers) =>
        headers.Select(h => new KeyValuePair<string, string>(h.Name, h.Value)).ToArray();

    private static ExportMapping F(string exportName, string field) => new(exportName, field);

    private static ExportMapping S(string exportName, string value) => new(exportName, null, value);

    private static RenderedRequest Render(OrderData order, params ExportMapping[] mappings) =>
        RequestRenderer.Render(Url, mappings, order, NewSale);

    private static RenderedRequest Render(params ExportMapping[] mappings) => Render(Jane(), mappings);

    // ---- the seed example -------------------------------------------------------------------

    [Fact]
    public void Seed_example_renders_the_documented_GET_url()
    {
        var request = Render(
            F("first_name", "[firstName]"),
            F("last_name", "[lastName]"),
            F("order_date", "[orderDate]"),
            S("list_id", "400"),
            F("email_address", "[emailAddress]"),
            F("campaign_number", "[campaignId]"));

        Assert.Equal("GET", request.Method);
        Assert.Equal(
            "https://postingmydata.com/partials.php?first_name=Jane&last_name=Doe&order_date=2024-07-31%2016%3A24%3A58&list_id=400&email_address=jane%40example.com&campaign_number=259",
            request.Url);
        Assert.Empty(request.Headers);
        Assert.Null(request.Body);
    }

    // ---- GET query strings: order, missing data, encoding --------------------------------------

    public static TheoryData<ExportMapping[], string> GetCases => new()
    {
        // Mapping order is kept, whatever the alphabet says.
        { [F("z", "lastName"), F("a", "firstName"), S("m", "1")], Url + "?z=Doe&a=Jane&m=1" },
        { [F("a", "firstName"), S("m", "1"), F("z", "lastName")], Url + "?a=Jane&m=1&z=Doe" },
        // Missing order data renders as an empty value.
        { [F("address1", "address1"), F("address2", "address2")], Url + "?address1=1%20Main%20St&address2=" },
        { [F("x", "[noSuchField]")], Url + "?x=" },
        { [S("empty", "")], Url + "?empty=" },
        // The same field twice under two export names.
        { [F("fn", "firstName"), F("first", "firstName")], Url + "?fn=Jane&first=Jane" },
        // No mappings at all: the bare URL, no question mark.
        { [], Url },
    };

    [Theory]
    [MemberData(nameof(GetCases))]
    public void Mappings_become_query_parameters_in_mapping_order(ExportMapping[] mappings, string expectedUrl)
    {
        var request = Render(mappings);

        Assert.Equal("GET", request.Method);
        Assert.Equal(expectedUrl, request.Url);
        Assert.Empty(request.Headers);
        Assert.Null(request.Body);
    }

    [Theory]
    [InlineData("a b", "a%20b")]
    [InlineData("a&b=c", "a%26b%3Dc")]
    [InlineData("1+1", "1%2B1")]
    [InlineData("José", "Jos%C3%A9")]
    [InlineData("what?#frag", "what%3F%23frag")]
    [InlineData("a/b:c@d", "a%2Fb%3Ac%40d")]
    [InlineData("100%", "100%25")]
    [InlineData("\"quoted\"", "%22quoted%22")]
    [InlineData("AZaz09-._~", "AZaz09-._~")]
    [InlineData("日本", "%E6%97%A5%E6%9C%AC")]
    public void Values_are_percent_encoded_as_RFC_3986(string value, string encoded)
    {
        // Through an order field (parsed) and through a static value: both encode the same way.
        var order = Order(JsonSerializer.Serialize(new Dictionary<string, object> { ["orderId"] = 1, ["note"] = value }));

        var request = Render(order, F("note", "note"), S("fixed", value));

        Assert.Equal($"{Url}?note={encoded}&fixed={encoded}", request.Url);
    }

    [Theory]
    [InlineData("first name", "first%20name")]
    [InlineData("a&b", "a%26b")]
    [InlineData("x=y", "x%3Dy")]
    [InlineData("prénom", "pr%C3%A9nom")]
    [InlineData("data[first]", "data%5Bfirst%5D")]
    public void Export_names_are_percent_encoded_too(string exportName, string encoded)
    {
        var request = Render(F(exportName, "firstName"));

        Assert.Equal($"{Url}?{encoded}=Jane", request.Url);
    }

    [Theory]
    [InlineData("a b", "a%20b")]
    [InlineData("a&b=c", "a%26b%3Dc")]
    [InlineData("1+1", "1%2B1")]
    [InlineData("José", "Jos%C3%A9")]
    [InlineData("what?#frag", "what%3F%23frag")]
    public void Encode_joins_encoded_pairs_with_ampersands(string value, string encoded)
    {
        var text = RequestRenderer.Encode([new("k", value), new("k 2", value)]);

        Assert.Equal($"k={encoded}&k%202={encoded}", text);
    }

    // ---- headers and form bodies --------------------------------------------------------------

    [Fact]
    public void A_header_mapping_makes_a_form_encoded_POST()
    {
        var request = Render(
            F("first_name", "firstName"),
            S("header:X-Api-Key", "s3cr3t"),
            S("list_id", "400"),
            F("email", "emailAddress"));

        Assert.Equal("POST", request.Method);
        Assert.Equal(Url, request.Url);
        Assert.Equal(H(("X-Api-Key", "s3cr3t"), ("Content-Type", "application/x-www-form-urlencoded")), request.Headers);
        Assert.Equal("first_name=Jane&list_id=400&email=jane%40example.com", request.Body);
        Assert.Equal("s3cr3t", request.Header("x-api-key"));
    }

    [Theory]
    [InlineData("header:X-Api-Key", "X-Api-Key")]
    [InlineData("HEADER:X-Api-Key", "X-Api-Key")]
    [InlineData("Header: X-Api-Key ", "X-Api-Key")]
    [InlineData("header:Authorization", "Authorization")]
    public void Header_prefix_is_case_insensitive_and_the_name_trimmed(string exportName, string headerName)
    {
        var request = Render(S(exportName, "Bearer abc"), F("first_name", "firstName"));

        Assert.Equal("POST", request.Method);
        Assert.Equal(H((headerName, "Bearer abc"), ("Content-Type", RequestRenderer.FormContentType)), request.Headers);
        Assert.Equal("first_name=Jane", request.Body);
    }

    [Fact]
    public void Several_headers_are_sent_in_mapping_order()
    {
        var request = Render(S("header:X-One", "1"), F("first_name", "firstName"), S("header:X-Two", "two words"));

        Assert.Equal(H(("X-One", "1"), ("X-Two", "two words"), ("Content-Type", RequestRenderer.FormContentType)), request.Headers);
        Assert.Equal("first_name=Jane", request.Body);
    }

    [Fact]
    public void Header_only_profile_posts_an_empty_form_body()
    {
        var request = Render(S("header:X-Api-Key", "k"));

        Assert.Equal("POST", request.Method);
        Assert.Equal(Url, request.Url);
        Assert.Equal("", request.Body);
        Assert.Equal(RequestRenderer.FormContentType, request.Header("Content-Type"));
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/xml")]
    [InlineData("application/x-www-form-urlencoded; charset=utf-8")]
    [InlineData("application/jsonx")]
    public void Any_other_content_type_keeps_a_form_body_and_that_content_type(string contentType)
    {
        var request = Render(S("header:Content-Type", contentType), F("first_name", "firstName"), S("note", "a b&c"));

        Assert.Equal("POST", request.Method);
        Assert.Equal(Url, request.Url);
        Assert.Equal(H(("Content-Type", contentType)), request.Headers);
        Assert.Equal("first_name=Jane&note=a%20b%26c", request.Body);
    }

    // ---- JSON bodies ------------------------------------------------------------------------------

    [Theory]
    [InlineData("application/json")]
    [InlineData("Application/JSON; charset=utf-8")]
    [InlineData("APPLICATION/JSON")]
    [InlineData(" application/json ")]
    public void Json_content_type_makes_a_JSON_object_body_in_mapping_order(string contentType)
    {
        var order = Order("""{"orderId": 6908, "firstName": "José", "lastName": "Doe", "totalAmount": 59.9, "note": "say \"hi\" & <bye>"}""");

        var request = Render(order,
            F("last_name", "lastName"),
            S("header:Content-Type", contentType),
            F("first_name", "[firstName]"),
            S("list_id", "400"),
            F("order_id", "orderId"),
            F("total", "totalAmount"),
            F("missing", "address2"),
            F("note", "note"));

        Assert.Equal("POST", request.Method);
        Assert.Equal(Url, request.Url);
        Assert.Equal(H(("Content-Type", contentType)), request.Headers);
        Assert.Equal(
            """{"last_name":"Doe","first_name":"José","list_id":"400","order_id":"6908","total":"59.90","missing":"","note":"say \"hi\" & <bye>"}""",
            request.Body);
        // Every value is a string, in mapping order.
        using var body = JsonDocument.Parse(request.Body!);
        Assert.Equal(["last_name", "first_name", "list_id", "order_id", "total", "missing", "note"], body.RootElement.EnumerateObject().Select(p => p.Name));
        Assert.All(body.RootElement.EnumerateObject(), p => Assert.Equal(JsonValueKind.String, p.Value.ValueKind));
    }

    [Fact]
    public void Json_body_with_only_headers_is_an_empty_object()
    {
        var request = Render(S("header:Content-Type", "application/json"));

        Assert.Equal("{}", request.Body);
    }

    [Theory]
    [InlineData("application/json", true)]
    [InlineData("Application/JSON; charset=utf-8", true)]
    [InlineData("application/json;charset=UTF-8", true)]
    [InlineData("text/plain", false)]
    [InlineData("application/problem+json", false)]
    [InlineData("application/x-www-form-urlencoded", false)]
    [InlineData("not a media type", false)]
    [InlineData("", false)]
    [InlineData(null, false)]
    public void IsJson_compares_the_media_type_case_insensitively(string? contentType, bool expected)
    {
        Assert.Equal(expected, RequestRenderer.IsJson(contentType));
    }

    // ---- httpMethod and httpMethodType ------------------------------------------------------

    public static TheoryData<string?, string?, string, bool> MethodCases => new()
    {
        // httpMethod alone: that method, parameters in the URL (GET = url parameters is the default).
        { "PUT", null, "PUT", false },
        { "PATCH", null, "PATCH", false },
        { "DELETE", null, "DELETE", false },
        { "POST", null, "POST", false },
        { "put", null, "PUT", false },
        { " patch ", null, "PATCH", false },
        { "Delete", null, "DELETE", false },
        // httpMethodType POST: the body.
        { "PUT", "POST", "PUT", true },
        { "PATCH", "POST", "PATCH", true },
        { "DELETE", "POST", "DELETE", true },
        { "POST", "POST", "POST", true },
        { "put", "post", "PUT", true },
        // httpMethodType GET: the URL.
        { "PUT", "GET", "PUT", false },
        { "POST", "GET", "POST", false },
        { "delete", "get", "DELETE", false },
        // httpMethodType without httpMethod: still a header mapping, so a POST.
        { null, "GET", "POST", false },
        { null, "get", "POST", false },
        { null, "POST", "POST", true },
        { null, "post", "POST", true },
    };

    [Theory]
    [MemberData(nameof(MethodCases))]
    public void HttpMethod_and_httpMethodType_pick_the_method_and_where_parameters_go(
        string? method, string? methodType, string expectedMethod, bool parametersInBody)
    {
        var mappings = new List<ExportMapping> { F("first_name", "firstName") };
        if (method is not null)
        {
            mappings.Add(S("header:httpMethod", method));
        }
        mappings.Add(S("list_id", "400"));
        if (methodType is not null)
        {
            mappings.Add(S("header:httpMethodType", methodType));
        }

        var request = RequestRenderer.Render(Url, mappings, Jane(), NewSale);

        Assert.Equal(expectedMethod, request.Method);
        if (parametersInBody)
        {
            Assert.Equal(Url, request.Url);
            Assert.Equal("first_name=Jane&list_id=400", request.Body);
            Assert.Equal(H(("Content-Type", RequestRenderer.FormContentType)), request.Headers);
        }
        else
        {
            Assert.Equal(Url + "?first_name=Jane&list_id=400", request.Url);
            Assert.Null(request.Body);
            Assert.Empty(request.Headers);
        }
        // The two controls are never sent.
        Assert.DoesNotContain(request.Headers, h => h.Key.Contains("httpMethod", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain("httpMethod", request.Url, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("httpMethod", request.Body ?? "", StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("header:HTTPMETHOD", "header:HttpMethodType")]
    [InlineData("Header: httpMethod ", "HEADER:httpmethodtype")]
    public void Control_header_names_are_case_insensitive(string methodName, string methodTypeName)
    {
        var request = Render(S(methodName, "PUT"), S(methodTypeName, "POST"), F("first_name", "firstName"));

        Assert.Equal("PUT", request.Method);
        Assert.Equal(Url, request.Url);
        Assert.Equal("first_name=Jane", request.Body);
        Assert.Equal(H(("Content-Type", RequestRenderer.FormContentType)), request.Headers);
    }

    [Fact]
    public void HttpMethod_with_a_json_body_and_an_api_key()
    {
        var request = Render(
            S("header:httpMethod", "PATCH"),
            S("header:httpMethodType", "POST"),
            S("header:Content-Type", "application/json"),
            S("header:X-Api-Key", "k"),
            F("email", "emailAddress"));

        Assert.Equal("PATCH", request.Method);
        Assert.Equal(Url, request.Url);
        Assert.Equal(H(("Content-Type", "application/json"), ("X-Api-Key", "k")), request.Headers);
        Assert.Equal("""{"email":"jane@example.com"}""", request.Body);
    }

    [Fact]
    public void HttpMethodType_GET_with_an_api_key_keeps_parameters_in_the_url()
    {
        var request = Render(S("header:X-Api-Key", "k"), S("header:httpMethodType", "GET"), F("first_name", "firstName"));

        Assert.Equal("POST", request.Method);
        Assert.Equal(Url + "?first_name=Jane", request.Url);
        Assert.Null(request.Body);
        Assert.Equal(H(("X-Api-Key", "k")), request.Headers);
    }

    [Theory]
    [InlineData("PUT")]
    [InlineData("DELETE")]
    [InlineData("POST")]
    public void HttpMethod_with_real_headers_and_no_httpMethodType_sends_the_parameters_in_the_body(string method)
    {
        // Real headers put the non-header mappings in the body (seed 003); httpMethod only
        // changes the verb. It is httpMethodType GET that moves them back to the URL.
        var request = Render(S("header:httpMethod", method), S("header:Content-Type", "application/json"), F("first_name", "firstName"));

        Assert.Equal(method, request.Method);
        Assert.Equal(Url, request.Url);
        Assert.Equal("""{"first_name":"Jane"}""", request.Body);
        Assert.Equal(H(("Content-Type", "application/json")), request.Headers);
    }

    // ---- merge tags -------------------------------------------------------------------------------

    public static TheoryData<string, string> ProductLineCases => new()
    {
        { "product1_id", "p1" },
        { "product1_sku", "SKU-1" },
        { "product1_name", "Widget" },
        { "product1_qty", "2" },
        { "product1_price", "49.90" },
        { "product2_id", "p2" },
        { "product2_sku", "SKU-2" },
        { "product2_name", "Gadget Pro" },
        { "product2_qty", "1" },
        { "product2_price", "5.00" },
        // Line 3 has only a SKU: the rest is empty, the quantity defaults to 1.
        { "product3_id", "" },
        { "product3_sku", "SKU-3" },
        { "product3_name", "" },
        { "product3_qty", "1" },
        { "product3_price", "" },
        // Beyond the items: empty.
        { "product4_sku", "" },
        { "product4_qty", "" },
        { "product4_price", "" },
        { "product100_name", "" },
        // Same tag, other spellings.
        { "[product1_sku]", "SKU-1" },
        { "PRODUCT1_SKU", "SKU-1" },
        { "Product2_Price", "5.00" },
        { "productCount", "3" },
    };

    [Theory]
    [MemberData(nameof(ProductLineCases))]
    public void Product_line_tags_render_the_line_items(string field, string expected)
    {
        Assert.Equal(expected, RequestRenderer.Lookup(field, Jane(), NewSale));
    }

    [Fact]
    public void Product_lines_render_in_a_request()
    {
        var request = Render(
            F("product1_sku", "product1_sku"), F("product1_qty", "product1_qty"), F("product1_price", "product1_price"),
            F("product1_name", "product1_name"), F("product1_id", "product1_id"),
            F("product2_sku", "product2_sku"), F("product2_name", "product2_name"),
            F("product4_sku", "product4_sku"));

        Assert.Equal(
            Url + "?product1_sku=SKU-1&product1_qty=2&product1_price=49.90&product1_name=Widget&product1_id=p1"
                + "&product2_sku=SKU-2&product2_name=Gadget%20Pro&product4_sku=",
            request.Url);
    }

    [Theory]
    [InlineData("49.9", "49.90")]
    [InlineData("49.95", "49.95")]
    [InlineData("10", "10.00")]
    [InlineData("0.5", "0.50")]
    [InlineData("0", "0.00")]
    [InlineData("12.3456", "12.3456")]
    [InlineData("49.999", "49.999")]
    [InlineData("\"4.90\"", "4.90")]
    [InlineData("1000000", "1000000.00")]
    public void Prices_have_at_least_two_decimals(string priceJson, string expected)
    {
        var order = Order($$"""{"orderId": 1, "items": [{"sku": "S", "price": {{priceJson}}}]}""");

        Assert.Equal(expected, RequestRenderer.Lookup("product1_price", order, NewSale));
    }

    public static TheoryData<string, RenderContext, string> FieldCases => new()
    {
        { "orderDate", NewSale, "2024-07-31 16:24:58" },
        { "[orderDate]", NewSale, "2024-07-31 16:24:58" },
        { "dateCreated", NewSale, "2024-07-31 16:24:58" },
        { "customerType", new RenderContext("abandoned_cart"), "abandoned_cart" },
        { "[customerType]", new RenderContext("subscription_started"), "subscription_started" },
        { "campaignName", new RenderContext("new_sale", "Test Lander"), "Test Lander" },
        { "[campaignName]", new RenderContext("new_sale", "Test Lander"), "Test Lander" },
        { "campaignName", NewSale, "" },
        { "firstName", NewSale, "Jane" },
        { "[firstName]", NewSale, "Jane" },
        { "[ firstName ]", NewSale, "Jane" },
        { " [firstName] ", NewSale, "Jane" },
        { "FIRSTNAME", NewSale, "Jane" },
        { "affiliateSubId", NewSale, "sub-42" },
        { "[affiliateSubId]", NewSale, "sub-42" },
        { "orderId", NewSale, "6908" },
        { "customerId", NewSale, "C-77" },
        { "campaignId", NewSale, "259" },
        { "totalAmount", NewSale, "59.90" },
        { "isTestCard", NewSale, "0" },
        { "address2", NewSale, "" },
        { "dateUpdated", NewSale, "" },
        { "noSuchField", NewSale, "" },
        { "product0_sku", NewSale, "" },
    };

    [Theory]
    [MemberData(nameof(FieldCases))]
    public void Lookup_renders_merge_tags(string field, RenderContext context, string expected)
    {
        Assert.Equal(expected, RequestRenderer.Lookup(field, Jane(), context));
    }

    [Fact]
    public void OrderDate_is_empty_without_dateCreated()
    {
        var order = Order("""{"orderId": 1, "dateUpdated": "2024-08-01 10:00:00"}""");

        Assert.Equal("", RequestRenderer.Lookup("orderDate", order, NewSale));
    }

    [Fact]
    public void Derived_tags_render_in_a_request_from_the_context()
    {
        var request = RequestRenderer.Render(Url,
            [F("type", "[customerType]"), F("campaign", "campaignName"), F("date", "orderDate"), F("sub", "affiliateSubId")],
            Jane(), new RenderContext("abandoned_cart", "Test Lander"));

        Assert.Equal(Url + "?type=abandoned_cart&campaign=Test%20Lander&date=2024-07-31%2016%3A24%3A58&sub=sub-42", request.Url);
    }

    // ---- header injection -------------------------------------------------------------------

    [Theory]
    [InlineData("header:X-Test", "a\r\nX-Evil: 1")]
    [InlineData("header:X-Test", "a\nX-Evil: 1")]
    [InlineData("header:X-Test", "a\r")]
    [InlineData("header:Content-Type", "application/json\r\n")]
    [InlineData("header:X-Te\r\nst", "ok")]
    [InlineData("header:X-Te\nst", "ok")]
    public void A_line_break_in_a_header_throws(string exportName, string value)
    {
        Assert.Throws<ArgumentException>(() => Render(S(exportName, value), F("first_name", "firstName")));
    }

    [Fact]
    public void A_line_break_in_a_parameter_is_encoded_not_refused()
    {
        var request = Render(S("note", "a\r\nb"));

        Assert.Equal(Url + "?note=a%0D%0Ab", request.Url);
    }

    // ---- helpers --------------------------------------------------------------------------------

    [Theory]
    [InlineData("header:X-Api-Key", true, "X-Api-Key")]
    [InlineData("HEADER:x", true, "x")]
    [InlineData("header: X ", true, "X")]
    [InlineData("header:", true, "")]
    [InlineData("headers:X", false, "")]
    [InlineData("x-header:X", false, "")]
    [InlineData("first_name", false, "")]
    public void IsHeader_recognises_the_prefix(string exportName, bool isHeader, string headerName)
    {
        Assert.Equal(isHeader, RequestRenderer.IsHeader(exportName, out var name));
        Assert.Equal(headerName, name);
    }

    [Theory]
    [InlineData("httpMethod", true)]
    [InlineData("HTTPMETHOD", true)]
    [InlineData("httpMethodType", true)]
    [InlineData("httpmethodtype", true)]
    [InlineData("X-Http-Method", false)]
    [InlineData("Content-Type", false)]
    public void IsControl_names_the_two_control_headers(string headerName, bool expected)
    {
        Assert.Equal(expected, RequestRenderer.IsControl(headerName));
    }
}
