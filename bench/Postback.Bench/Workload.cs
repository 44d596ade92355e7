using System.Buffers;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Postback.Bench;

/// The export profile a workload sets up: its mappings and how the receiver tells its
/// deliveries apart (the HTTP method: the call center is a GET, fulfillment a POST).
public sealed record BenchProfile(string Name, JsonArray Mappings, string Method);

/// What the benchmark sends and what each event fires.
/// - realistic (the default): an order as Konnektive posts it: every field of its export
///   mapping (order, customer, billing, shipping, totals, dates, status, campaign, marketing),
///   two line items and five extra fields, about 1.5 KB of JSON; each event fires two profiles,
///   a call-center GET with 17 mappings and a fulfillment JSON POST with 25 mappings behind a
///   header:Authorization.
/// - small (the benchmark before it): a new sale of 15 fields and one line item, one GET profile
///   with 17 mappings.
/// Every order carries the bench's send timestamp as the extra field benchSentAt, which both
/// profiles map to sent_at; the receiver reads it back from the query or the JSON body.
public sealed class Workload
{
    public const string Realistic = "realistic";
    public const string Small = "small";

    private Workload(string name) => Name = name;

    public string Name { get; }

    public bool IsRealistic => Name == Realistic;

    public static Workload Parse(string name) => name switch
    {
        Realistic => new Workload(Realistic),
        Small => new Workload(Small),
        _ => throw new ArgumentException($"--workload must be {Realistic} or {Small}, not '{name}'"),
    };

    /// The profiles each new_sale event fires, in the order they are created.
    public IReadOnlyList<BenchProfile> Profiles => IsRealistic
        ? [new("Bench call center", CallCenterMappings(), "GET"), new("Bench fulfillment", FulfillmentMappings(), "POST")]
        : [new("Bench call center", CallCenterMappings(), "GET")];

    public int DeliveriesPerEvent => Profiles.Count;

    /// What one order looks like on the wire, in bytes (for the report).
    public int OrderBytes()
    {
        var buffer = new ArrayBufferWriter<byte>(2048);
        using (var w = new Utf8JsonWriter(buffer))
        {
            WriteOrder(w, 123_456_789, 638_000_000_000_000);
        }
        return buffer.WrittenCount;
    }

    public JsonNode Order(long orderId, long sentAt)
    {
        var buffer = new ArrayBufferWriter<byte>(2048);
        using (var w = new Utf8JsonWriter(buffer))
        {
            WriteOrder(w, orderId, sentAt);
        }
        return JsonNode.Parse(buffer.WrittenSpan)!;
    }

    // Not digits alone: a 13-19 digit timestamp passing the Luhn check (one in ten) looks like a
    // card number, which the hub drops wherever it arrives; the receiver strips the 't'.
    public static string SentAtText(long sentAt) => "t" + sentAt.ToString(CultureInfo.InvariantCulture);

    public byte[] Single(string eventId, string type, long orderId, long sentAt)
    {
        var buffer = new ArrayBufferWriter<byte>(2048);
        using (var w = new Utf8JsonWriter(buffer))
        {
            WriteEvent(w, eventId, type, orderId, sentAt);
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// {"events": [...]} for orders firstOrderId .. firstOrderId + count - 1.
    public byte[] Batch(string eventPrefix, string type, long firstOrderId, int count, long sentAt)
    {
        var buffer = new ArrayBufferWriter<byte>(count * (IsRealistic ? 1800 : 700));
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartArray("events");
            for (var i = 0; i < count; i++)
            {
                var orderId = firstOrderId + i;
                WriteEvent(w, eventPrefix + orderId.ToString(CultureInfo.InvariantCulture), type, orderId, sentAt);
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private void WriteEvent(Utf8JsonWriter w, string eventId, string type, long orderId, long sentAt)
    {
        w.WriteStartObject();
        w.WriteString("eventId", eventId);
        w.WriteString("type", type);
        w.WritePropertyName("order");
        WriteOrder(w, orderId, sentAt);
        w.WriteEndObject();
    }

    private void WriteOrder(Utf8JsonWriter w, long orderId, long sentAt)
    {
        var id = orderId.ToString(CultureInfo.InvariantCulture);
        w.WriteStartObject();
        w.WriteNumber("orderId", orderId);
        w.WriteString("customerId", "C" + id);
        if (IsRealistic)
        {
            w.WriteString("orderStatus", "COMPLETE");
            w.WriteString("orderType", "NEW_SALE");
            w.WriteString("dateUpdated", "2024-07-31 16:25:03");
            w.WriteString("isTestCard", "0");
        }
        w.WriteString("campaignId", "259");
        w.WriteString("firstName", "Jane");
        w.WriteString("lastName", "Doe");
        w.WriteString("emailAddress", "jane." + id + "@example.com");
        w.WriteString("phoneNumber", "5125550123");
        w.WriteString("address1", "1200 Congress Ave");
        if (IsRealistic)
        {
            w.WriteString("address2", "Suite 400");
        }
        w.WriteString("city", "Austin");
        w.WriteString("state", "TX");
        w.WriteString("postalCode", "78701");
        w.WriteString("country", "US");
        if (IsRealistic)
        {
            w.WriteString("shipFirstName", "Jane");
            w.WriteString("shipLastName", "Doe");
            w.WriteString("shipAddress1", "4500 Guadalupe St");
            w.WriteString("shipAddress2", "Apt 12B");
            w.WriteString("shipCity", "Austin");
            w.WriteString("shipState", "TX");
            w.WriteString("shipPostalCode", "78751");
            w.WriteString("shipCountry", "US");
        }
        w.WriteString("ipAddress", "203.0.113.7");
        w.WriteString("dateCreated", "2024-07-31 16:24:58");
        if (IsRealistic)
        {
            w.WriteNumber("totalAmount", 64.85m);
            w.WriteNumber("subTotal", 54.90m);
            w.WriteNumber("shippingAmount", 5.95m);
            w.WriteNumber("salesTaxAmount", 4.00m);
            w.WriteNumber("discountAmount", 0.00m);
            w.WriteString("currencyCode", "USD");
            w.WriteString("affId", "AFF1042");
            w.WriteString("sourceValue1", "fb-summer-sale");
            w.WriteString("sourceValue2", "adset-77");
            w.WriteString("sourceValue3", "creative-3");
            w.WriteString("sourceValue4", "");
            w.WriteString("sourceValue5", "");
            w.WriteStartArray("items");
            WriteItem(w, "12", "TRIAL-1", "Trial bottle, 7-day supply", 1, 4.95m);
            WriteItem(w, "14", "SUB-30", "Monthly supply, 30 capsules", 1, 49.95m);
            w.WriteEndArray();
            // Five extra fields, as landers and CRMs add them.
            w.WriteString("utm_source", "facebook");
            w.WriteString("utm_medium", "paid_social");
            w.WriteString("utm_campaign", "summer-sale-2024");
            w.WriteString("landerUrl", "https://shop.example.com/lp/summer-sale-2024/v3?ref=fb&utm_source=facebook&utm_medium=paid_social&utm_campaign=summer-sale-2024&fbclid=IwAR2xK9pQ7vLmZ3");
            w.WriteString("giftMessage", "Happy birthday, Sam! Hope these keep you going through the marathon training. Love, Jane");
        }
        else
        {
            w.WriteNumber("totalAmount", 49.90m);
            w.WriteStartArray("items");
            WriteItem(w, "12", "TRIAL-1", "Trial bottle", 1, 4.95m);
            w.WriteEndArray();
        }
        w.WriteString("benchSentAt", SentAtText(sentAt));
        w.WriteEndObject();
    }

    private static void WriteItem(Utf8JsonWriter w, string productId, string sku, string name, int qty, decimal price)
    {
        w.WriteStartObject();
        w.WriteString("productId", productId);
        w.WriteString("sku", sku);
        w.WriteString("name", name);
        w.WriteNumber("qty", qty);
        w.WriteNumber("price", price);
        w.WriteEndObject();
    }

    /// The call center's profile: 17 mappings, a GET with a query string about as long as a
    /// typical call-center postback.
    public static JsonArray CallCenterMappings() =>
    [
        Map("order_id", "orderId"),
        Map("sent_at", "benchSentAt"),
        Map("customer_type", "customerType"),
        Map("first_name", "firstName"),
        Map("last_name", "lastName"),
        Map("email_address", "emailAddress"),
        Map("phone", "phoneNumber"),
        Map("address", "address1"),
        Map("city", "city"),
        Map("state", "state"),
        Map("zip", "postalCode"),
        Map("order_date", "orderDate"),
        Map("campaign_number", "campaignId"),
        Map("campaign_name", "campaignName"),
        Map("amount", "totalAmount"),
        Map("product_sku", "product1_sku"),
        Static("list_id", "400"),
    ];

    /// Fulfillment's profile: 25 mappings in a JSON body, sent with a bearer token.
    public static JsonArray FulfillmentMappings() =>
    [
        Static("header:Content-Type", "application/json"),
        Static("header:Authorization", "Bearer fulfil_3f9a1c7e5b2d4086a1e7c9b3d5f70812"),
        Map("order_id", "orderId"),
        Map("sent_at", "benchSentAt"),
        Map("customer_type", "customerType"),
        Map("order_status", "orderStatus"),
        Map("order_date", "orderDate"),
        Map("ship_first_name", "shipFirstName"),
        Map("ship_last_name", "shipLastName"),
        Map("ship_address1", "shipAddress1"),
        Map("ship_address2", "shipAddress2"),
        Map("ship_city", "shipCity"),
        Map("ship_state", "shipState"),
        Map("ship_zip", "shipPostalCode"),
        Map("ship_country", "shipCountry"),
        Map("email", "emailAddress"),
        Map("phone", "phoneNumber"),
        Map("sku_1", "product1_sku"),
        Map("qty_1", "product1_qty"),
        Map("name_1", "product1_name"),
        Map("price_1", "product1_price"),
        Map("sku_2", "product2_sku"),
        Map("qty_2", "product2_qty"),
        Map("price_2", "product2_price"),
        Map("total", "totalAmount"),
        Map("currency", "currencyCode"),
        Static("warehouse", "AUS-1"),
    ];

    private static JsonObject Map(string exportName, string field) => new() { ["exportName"] = exportName, ["field"] = field };

    private static JsonObject Static(string exportName, string value) => new() { ["exportName"] = exportName, ["static"] = value };
}
