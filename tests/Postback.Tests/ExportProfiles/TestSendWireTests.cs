using System.Text.Json.Nodes;
using Postback.ExportProfiles;
using Postback.Tests.Support;

namespace Postback.Tests.ExportProfiles;

/// Test-send against a real Kestrel receiver on 127.0.0.1: what arrives on the wire is exactly
/// what the CRMs document for each kind of profile.
public sealed class TestSendWireTests : IAsyncLifetime
{
    private HubFactory _hub = null!;
    private Receiver _receiver = null!;
    private HttpClient _api = null!;

    private static readonly object Order = new
    {
        orderId = 6908,
        campaignId = "259",
        firstName = "Jane",
        lastName = "Doe",
        emailAddress = "jane@example.com",
        dateCreated = "2024-07-31 16:24:58",
        items = new[] { new { productId = "12", sku = "SKU-12", name = "Trial Bottle", qty = 2, price = 4.95 } },
    };

    public async Task InitializeAsync()
    {
        _hub = await HubFactory.StartAsync();
        _receiver = await Receiver.StartAsync();
        _api = _hub.Api();
    }

    public async Task DisposeAsync()
    {
        _api.Dispose();
        await _receiver.DisposeAsync();
        await _hub.DisposeAsync();
    }

    private async Task<(ReceivedRequest Arrived, JsonNode Result)> SendAsync(params object[] mappings)
    {
        var created = await _api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "wire",
            postbackUrl = _receiver.Url("/partials.php"),
            mappings,
            routes = new[] { new { customerTypes = new[] { "new_sale" } } },
        });
        Assert.Equal(201, (int)created.StatusCode);
        var id = (await Json.ReadAsync(created))["id"]!.GetValue<long>();

        var before = _receiver.Received.Count;
        var response = await _api.PostJsonAsync($"/api/v1/export-profiles/{id}/test", new { order = Order, customerType = "new_sale" });
        Assert.Equal(200, (int)response.StatusCode);
        var result = await Json.ReadAsync(response);
        Assert.Equal(before + 1, _receiver.Received.Count);
        return (_receiver.Received[^1], result);
    }

    private static object Field(string exportName, string field) => new { exportName, field };

    private static object Static(string exportName, string value) => new { exportName, @static = value };

    [Fact]
    public async Task A_test_send_carries_a_test_webhook_id_and_the_profile_signature()
    {
        var key = System.Security.Cryptography.RandomNumberGenerator.GetBytes(24);
        var created = await _api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "signed wire",
            postbackUrl = _receiver.Url("/signed"),
            signingSecret = "whsec_" + Convert.ToBase64String(key),
            mappings = new object[] { new { exportName = "header:Content-Type", @static = "application/json" }, Field("first_name", "firstName") },
            routes = new[] { new { customerTypes = new[] { "new_sale" } } },
        });
        Assert.Equal(201, (int)created.StatusCode);
        var id = (await Json.ReadAsync(created))["id"]!.GetValue<long>();

        var response = await _api.PostJsonAsync($"/api/v1/export-profiles/{id}/test", new { order = Order, customerType = "new_sale" });
        Assert.Equal(200, (int)response.StatusCode);
        var arrived = _receiver.Received[^1];
        var webhookId = arrived.Header("webhook-id");
        Assert.StartsWith("test_", webhookId);
        var signed = $"{webhookId}.{arrived.Header("webhook-timestamp")}.{arrived.BodyText}";
        Assert.Equal("v1," + Convert.ToBase64String(System.Security.Cryptography.HMACSHA256.HashData(key, System.Text.Encoding.UTF8.GetBytes(signed))),
            arrived.Header("webhook-signature"));
        Assert.Equal("""{"first_name":"Jane"}""", arrived.BodyText);
    }

    [Fact]
    public async Task Default_profile_is_a_GET_with_the_mappings_as_query_parameters_in_order()
    {
        var (arrived, result) = await SendAsync(
            Field("first_name", "firstName"), Field("last_name", "[lastName]"), Field("order_date", "orderDate"),
            Static("list_id", "400"), Field("email_address", "emailAddress"), Field("campaign_number", "campaignId"));

        Assert.Equal("GET", arrived.Method);
        Assert.Equal("/partials.php", arrived.Path);
        Assert.Equal("?first_name=Jane&last_name=Doe&order_date=2024-07-31%2016%3A24%3A58&list_id=400&email_address=jane%40example.com&campaign_number=259", arrived.RawQuery);
        Assert.Empty(arrived.Body);
        Assert.Null(arrived.Header("Content-Type"));
        Assert.Equal("Postback/1.0", arrived.Header("User-Agent"));
        Assert.Null(arrived.Header("traceparent"));

        Assert.True(result["succeeded"]!.GetValue<bool>());
        Assert.Equal(200, result["response"]!["status"]!.GetValue<int>());
        Assert.Equal("OK", result["response"]!["bodyExcerpt"]!.GetValue<string>());
        Assert.True(result["durationMs"]!.GetValue<double>() >= 0);
        Assert.Equal("GET", result["request"]!["method"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_header_mapping_makes_a_form_POST_with_the_other_mappings_in_the_body()
    {
        var (arrived, _) = await SendAsync(
            Static("header:X-Api-Key", "secret-123"), Field("first_name", "firstName"), Field("sku", "product1_sku"),
            Field("qty", "product1_qty"), Field("price", "product1_price"), Static("note", "a b&c=d"));

        Assert.Equal("POST", arrived.Method);
        Assert.Equal("", arrived.RawQuery);
        Assert.Equal("secret-123", arrived.Header("X-Api-Key"));
        Assert.Equal("application/x-www-form-urlencoded", arrived.Header("Content-Type"));
        Assert.Equal("first_name=Jane&sku=SKU-12&qty=2&price=4.95&note=a%20b%26c%3Dd", arrived.BodyText);
        Assert.Equal(arrived.Body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), arrived.Header("Content-Length"));
    }

    [Fact]
    public async Task Content_type_json_makes_a_JSON_body()
    {
        var (arrived, _) = await SendAsync(
            Static("header:Content-Type", "application/json"), Field("first_name", "firstName"), Field("customer_type", "customerType"),
            Field("missing", "address2"));

        Assert.Equal("POST", arrived.Method);
        Assert.Equal("application/json", arrived.Header("Content-Type"));
        Assert.Equal("{\"first_name\":\"Jane\",\"customer_type\":\"new_sale\",\"missing\":\"\"}", arrived.BodyText);
    }

    [Theory]
    [InlineData("PUT")]
    [InlineData("PATCH")]
    [InlineData("DELETE")]
    [InlineData("POST")]
    public async Task HttpMethod_picks_the_method_and_parameters_stay_in_the_URL_by_default(string method)
    {
        var (arrived, _) = await SendAsync(Static("header:httpMethod", method), Field("order_id", "orderId"), Static("list_id", "400"));

        Assert.Equal(method, arrived.Method);
        Assert.Equal("?order_id=6908&list_id=400", arrived.RawQuery);
        Assert.Empty(arrived.Body);
        Assert.Null(arrived.Header("httpMethod"));
    }

    [Theory]
    [InlineData("PUT")]
    [InlineData("PATCH")]
    [InlineData("DELETE")]
    public async Task HttpMethodType_POST_puts_the_parameters_in_the_body(string method)
    {
        var (arrived, _) = await SendAsync(
            Static("header:httpMethod", method), Static("header:httpMethodType", "POST"),
            Static("header:Content-Type", "application/json"), Field("order_id", "orderId"));

        Assert.Equal(method, arrived.Method);
        Assert.Equal("", arrived.RawQuery);
        Assert.Equal("{\"order_id\":\"6908\"}", arrived.BodyText);
        Assert.Null(arrived.Header("httpMethod"));
        Assert.Null(arrived.Header("httpMethodType"));
    }

    [Fact]
    public async Task HttpMethodType_GET_keeps_the_parameters_in_the_URL_of_a_header_POST()
    {
        var (arrived, _) = await SendAsync(Static("header:X-Token", "t"), Static("header:httpMethodType", "GET"), Field("first_name", "firstName"));

        Assert.Equal("POST", arrived.Method);
        Assert.Equal("?first_name=Jane", arrived.RawQuery);
        Assert.Equal("t", arrived.Header("X-Token"));
        Assert.Null(arrived.Header("httpMethodType"));
        Assert.Empty(arrived.Body);
    }

    [Fact]
    public async Task The_receivers_answer_is_reported_with_status_headers_and_body_excerpt()
    {
        _receiver.Respond = _ => (503, new string('x', 10_000));
        var (_, result) = await SendAsync(Field("first_name", "firstName"));

        Assert.False(result["succeeded"]!.GetValue<bool>());
        Assert.Equal(503, result["response"]!["status"]!.GetValue<int>());
        Assert.True(result["response"]!["bodyTruncated"]!.GetValue<bool>());
        Assert.Equal(4096, result["response"]!["bodyExcerpt"]!.GetValue<string>().Length);
        Assert.Contains(result["response"]!["headers"]!.AsArray(), h => h!["key"]!.GetValue<string>() == "Server" && h["value"]!.GetValue<string>() == "Kestrel");
    }

    [Fact]
    public async Task A_receiver_that_hangs_is_reported_as_a_timeout()
    {
        _receiver.Delay = TimeSpan.FromSeconds(30);
        var (_, result) = await SendAsync(Field("first_name", "firstName"));

        Assert.False(result["succeeded"]!.GetValue<bool>());
        Assert.Null(result["response"]);
        Assert.Contains("timed out", result["error"]!.GetValue<string>());
    }
}

/// With private networks not allowed (the production default), neither a profile nor a
/// test-send can reach loopback.
public sealed class OutboundGuardTests
{
    [Fact]
    public async Task Loopback_postback_URLs_are_refused_when_private_networks_are_not_allowed()
    {
        await using var hub = await HubFactory.StartAsync(allowPrivateNetworks: false);
        using var api = hub.Api();
        var response = await api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "ssrf",
            postbackUrl = "http://127.0.0.1:9/internal",
            mappings = Array.Empty<object>(),
            routes = Array.Empty<object>(),
        });
        var reason = await Json.AssertProblemAsync(response, 400, "postbackUrl");
        Assert.Contains("private", reason);
    }

    [Fact]
    public async Task A_host_name_that_resolves_to_loopback_is_refused_at_send_time()
    {
        await using var hub = await HubFactory.StartAsync(allowPrivateNetworks: false);
        await using var receiver = await Receiver.StartAsync();
        using var api = hub.Api();
        var created = await api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "ssrf by name",
            postbackUrl = $"http://localhost:{receiver.BaseUri.Port}/internal",
            mappings = new[] { new { exportName = "a", @static = "1" } },
            routes = Array.Empty<object>(),
        });
        // "localhost" is loopback by name too: refused when saved.
        await Json.AssertProblemAsync(created, 400, "postbackUrl");

        var id = await hub.WithDbAsync(async db =>
        {
            // Store one directly, as a profile saved while private networks were allowed would be.
            var profile = new Postback.ExportProfiles.ExportProfile
            {
                OrganizationId = 1,
                Name = "legacy",
                PostbackUrl = $"http://localhost:{receiver.BaseUri.Port}/internal",
                Mappings = [new("a", null, "1")],
            };
            db.ExportProfiles.Add(profile);
            await db.SaveChangesAsync();
            return profile.Id;
        });
        var sent = await api.PostJsonAsync($"/api/v1/export-profiles/{id}/test", new { order = new { orderId = 1 } });
        var result = await Json.ReadAsync(sent);
        Assert.False(result["succeeded"]!.GetValue<bool>());
        Assert.Contains("AllowPrivateNetworks", result["error"]!.GetValue<string>());
        Assert.Empty(receiver.Received);
    }
}
