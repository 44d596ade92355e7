using Postback.ExportProfiles;
using Postback.FileExports;
using Postback.Orders;

namespace Postback.Tests.FileExports;

public sealed class CsvFileTests
{
    private static OrderData Order(string json)
    {
        var parsed = OrderParser.Parse(System.Text.Json.JsonDocument.Parse(json).RootElement);
        return parsed.Order ?? throw new InvalidOperationException(string.Join("; ", parsed.Errors.ToDictionary().Select(e => $"{e.Key}: {string.Join(", ", e.Value)}")));
    }

    [Fact]
    public void Rows_are_rfc_4180_with_values_rendered_as_for_postbacks()
    {
        var order = Order("""
            {"orderId": 42, "firstName": "José", "lastName": "O'Neil; \"Jr\"", "address1": "1 Main St, Apt 2", "totalAmount": "1234.5",
             "dateCreated": "2026-11-30 10:00:00",
             "items": [{"productId": "7", "sku": "SKU-7", "name": "Widget, large", "qty": 2, "price": "9.9"}]}
            """);
        List<ExportMapping> mappings =
        [
            new("id", "orderId"), new("first", "firstName"), new("last", "lastName"), new("street", "address1"),
            new("total", "totalAmount"), new("date", "orderDate"), new("sku", "product1_sku"), new("product", "product1_name"),
            new("price", "product1_price"), new("qty", "product1_qty"), new("missing", "product2_sku"), new("list", null, "400"),
        ];
        var context = new RenderContext("new_sale");
        var csv = CsvFile.Render(mappings, [new FileRow(order, context)], header: true, ",");

        Assert.Equal(
            "id,first,last,street,total,date,sku,product,price,qty,missing,list\r\n"
            + "42,José,\"O'Neil; \"\"Jr\"\"\",\"1 Main St, Apt 2\",1234.50,2026-11-30 10:00:00,SKU-7,\"Widget, large\",9.90,2,,400\r\n",
            CsvFile.Utf8.GetString(csv));
        // UTF-8 without a byte order mark.
        Assert.Equal((byte)'i', csv[0]);
        // The same values a postback sends.
        foreach (var mapping in mappings.Where(m => m.Field is not null))
        {
            Assert.Contains(RequestRenderer.Lookup(mapping.Field!, order, context).Replace("\"", "\"\"", StringComparison.Ordinal), CsvFile.Utf8.GetString(csv), StringComparison.Ordinal);
        }

        // Another delimiter quotes what holds that delimiter; header off.
        var semicolon = CsvFile.Utf8.GetString(CsvFile.Render(mappings[..3], [new FileRow(order, context)], header: false, ";"));
        Assert.Equal("42;José;\"O'Neil; \"\"Jr\"\"\"\r\n", semicolon);
        Assert.Equal("id,first\r\n", CsvFile.Utf8.GetString(CsvFile.Render(mappings[..2], [], header: true, ",")));
    }

    // Regression: the admin form creates a file profile with no mappings, and its page answered
    // 500 because CsvHelper refuses a record of zero fields.
    [Fact]
    public void A_profile_without_mappings_renders_an_empty_file()
    {
        var order = Order("""{"orderId": 42}""");
        Assert.Empty(CsvFile.Render([], [new FileRow(order, new RenderContext("new_sale"))], header: true, ","));
        Assert.Empty(CsvFile.Render([], [], header: true, ","));
    }

    [Theory]
    [InlineData("{profile}_{route}_{date:yyyyMMdd}.csv", "Call_center_partials_route1_20261130.csv")]
    [InlineData("orders-{date}.csv", "orders-2026-11-30.csv")]
    [InlineData("{route}.{date:yyyy.MM.dd}.txt", "route1.2026.11.30.txt")]
    public void File_names_render_their_tokens(string template, string expected)
    {
        Assert.Null(FileNameTemplate.Check(template));
        Assert.Equal(expected, FileNameTemplate.Render(template, "Call center: partials", "route1", new DateOnly(2026, 11, 30)));
    }

    [Theory]
    [InlineData("{customer}.csv", "not a token")]
    [InlineData("a/{date}.csv", "path separator")]
    [InlineData("a\\{date}.csv", "path separator")]
    [InlineData("{date:yyyy/MM/dd}.csv", "path separator")]
    [InlineData("{date.csv", "without its }")]
    [InlineData("x.csv.part", ".part")]
    [InlineData("", "is required")]
    public void Bad_file_name_templates_say_why(string template, string reason) =>
        Assert.Contains(reason, FileNameTemplate.Check(template), StringComparison.Ordinal);
}
