using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Postback.Bench;

/// The hub's public API as the benchmark uses it: campaigns, export profiles, preview, and
/// order events (single and batch).
public sealed class HubApi : IDisposable
{
    private readonly HttpClient _http;

    public HubApi(Uri baseUri, string apiKey, int connections)
    {
        _http = new HttpClient(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = connections,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            UseProxy = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
        })
        {
            BaseAddress = new Uri(baseUri, "api/v1/"),
            Timeout = TimeSpan.FromSeconds(120),
        };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
    }

    public async Task<JsonNode> PostJsonAsync(string path, JsonNode body, CancellationToken ct)
    {
        using var content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        using var response = await _http.PostAsync(path, content, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new BenchException($"POST {path} answered {(int)response.StatusCode}: {Shorten(text)}");
        }
        return JsonNode.Parse(text) ?? throw new BenchException($"POST {path} answered no JSON");
    }

    public async Task<JsonNode> GetJsonAsync(string path, CancellationToken ct)
    {
        using var response = await _http.GetAsync(path, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new BenchException($"GET {path} answered {(int)response.StatusCode}: {Shorten(text)}");
        }
        return JsonNode.Parse(text) ?? throw new BenchException($"GET {path} answered no JSON");
    }

    /// Posts a prepared event or batch body; returns the status and the number of deliveries
    /// the hub scheduled for it (from its answer).
    public async Task<(HttpStatusCode Status, int Deliveries, string? Error)> PostEventsAsync(string path, byte[] body, CancellationToken ct)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await _http.PostAsync(path, content, ct);
        var bytes = await response.Content.ReadAsByteArrayAsync(ct);
        if (response.StatusCode != HttpStatusCode.Accepted)
        {
            return (response.StatusCode, 0, Shorten(Encoding.UTF8.GetString(bytes)));
        }
        return (response.StatusCode, CountDeliveries(bytes), null);
    }

    private static int CountDeliveries(byte[] answer)
    {
        using var doc = JsonDocument.Parse(answer);
        var root = doc.RootElement;
        if (root.TryGetProperty("events", out var events))
        {
            var n = 0;
            foreach (var e in events.EnumerateArray())
            {
                n += e.GetProperty("deliveries").GetArrayLength();
            }
            return n;
        }
        return root.GetProperty("deliveries").GetArrayLength();
    }

    private static string Shorten(string s) => s.Length <= 600 ? s : s[..600] + "...";

    public void Dispose() => _http.Dispose();
}

/// Order events as a CRM would send them: a realistic new sale with one line item, a unique
/// eventId and orderId, and the bench's send timestamp as the extra field benchSentAt.
public static class Events
{
    public static JsonObject Order(long orderId, long sentAt) => new()
    {
        ["orderId"] = orderId,
        ["customerId"] = "C" + orderId.ToString(CultureInfo.InvariantCulture),
        ["campaignId"] = "259",
        ["firstName"] = "Jane",
        ["lastName"] = "Doe",
        ["emailAddress"] = $"jane.{orderId}@example.com",
        ["phoneNumber"] = "5125550123",
        ["address1"] = "1200 Congress Ave",
        ["city"] = "Austin",
        ["state"] = "TX",
        ["postalCode"] = "78701",
        ["country"] = "US",
        ["ipAddress"] = "203.0.113.7",
        ["dateCreated"] = "2024-07-31 16:24:58",
        ["totalAmount"] = 49.90,
        ["items"] = new JsonArray(new JsonObject { ["productId"] = "12", ["sku"] = "TRIAL-1", ["name"] = "Trial bottle", ["qty"] = 1, ["price"] = 4.95 }),
        ["benchSentAt"] = SentAtText(sentAt),
    };

    // Not digits alone: a 13-19 digit timestamp passing the Luhn check (one in ten) looks like a
    // card number, which the hub drops wherever it arrives; the receiver strips the 't'.
    public static string SentAtText(long sentAt) => "t" + sentAt.ToString(CultureInfo.InvariantCulture);

    public static byte[] Single(string eventId, string type, long orderId, long sentAt)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buffer))
        {
            WriteEvent(w, eventId, type, orderId, sentAt);
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// {"events": [...]} for orders firstOrderId .. firstOrderId + count - 1.
    public static byte[] Batch(string eventPrefix, string type, long firstOrderId, int count, long sentAt)
    {
        var buffer = new ArrayBufferWriter<byte>(count * 700);
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

    private static void WriteEvent(Utf8JsonWriter w, string eventId, string type, long orderId, long sentAt)
    {
        w.WriteStartObject();
        w.WriteString("eventId", eventId);
        w.WriteString("type", type);
        w.WritePropertyName("order");
        w.WriteStartObject();
        w.WriteNumber("orderId", orderId);
        w.WriteString("customerId", "C" + orderId.ToString(CultureInfo.InvariantCulture));
        w.WriteString("campaignId", "259");
        w.WriteString("firstName", "Jane");
        w.WriteString("lastName", "Doe");
        w.WriteString("emailAddress", "jane." + orderId.ToString(CultureInfo.InvariantCulture) + "@example.com");
        w.WriteString("phoneNumber", "5125550123");
        w.WriteString("address1", "1200 Congress Ave");
        w.WriteString("city", "Austin");
        w.WriteString("state", "TX");
        w.WriteString("postalCode", "78701");
        w.WriteString("country", "US");
        w.WriteString("ipAddress", "203.0.113.7");
        w.WriteString("dateCreated", "2024-07-31 16:24:58");
        w.WriteNumber("totalAmount", 49.90m);
        w.WriteStartArray("items");
        w.WriteStartObject();
        w.WriteString("productId", "12");
        w.WriteString("sku", "TRIAL-1");
        w.WriteString("name", "Trial bottle");
        w.WriteNumber("qty", 1);
        w.WriteNumber("price", 4.95m);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteString("benchSentAt", SentAtText(sentAt));
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// The profile every delivery goes through: 17 mappings, a GET with a query string about
    /// as long as a typical call-center postback.
    public static JsonArray Mappings() =>
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
        new JsonObject { ["exportName"] = "list_id", ["static"] = "400" },
    ];

    private static JsonObject Map(string exportName, string field) => new() { ["exportName"] = exportName, ["field"] = field };
}
