using System.Text.Json;
using Postback.Orders;

namespace Postback.Tests.Orders;

/// OrderJson: the stored form of an order. It is written by hand on the ingest path; what it
/// writes must stay exactly what the serializer wrote before (rows already stored are read by
/// the same Deserialize, and the API shows them).
public sealed class OrderJsonTests
{
    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    public static TheoryData<string> Orders => new()
    {
        """{"orderId": 1, "firstName": "Jane"}""",
        """
        {"orderId": 42, "firstName": "José", "lastName": "O'Brien \"Jr\"", "address1": "<b>1 & 2</b>", "city": "Zürich 🏔", "totalAmount": "49.90",
         "items": [{"productId": "12", "sku": "TRIAL-1", "name": "Trial, 7-day", "qty": 2, "price": 4.95}, {"sku": "X", "qty": 1}]}
        """,
        """
        {"orderId": 7, "giftMessage": "a \\ backslash, a \u00e9 and a \u2028 separator", "utm_source": "fb", "isTestCard": false, "items": [{"productId": "9", "price": 0, "qty": 0}]}
        """,
    };

    [Theory]
    [MemberData(nameof(Orders))]
    public void The_stored_form_is_what_the_serializer_wrote_and_reads_back_the_same(string json)
    {
        using var document = JsonDocument.Parse(json);
        var order = OrderParser.Parse(document.RootElement).Order;
        Assert.NotNull(order);

        var written = OrderJson.Serialize(order);

        var reference = JsonSerializer.Serialize(new { fields = new Dictionary<string, string>(order.Fields), items = order.Items.ToList() }, Web);
        Assert.Equal(reference, written);
        var read = OrderJson.Deserialize(written);
        Assert.Equal(order.OrderId, read.OrderId);
        Assert.Equal(order.Fields.OrderBy(f => f.Key), read.Fields.OrderBy(f => f.Key));
        Assert.Equal(order.Items, read.Items);
    }
}
