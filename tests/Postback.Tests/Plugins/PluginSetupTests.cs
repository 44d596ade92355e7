using Microsoft.AspNetCore.Http;
using Postback.Infrastructure;
using Postback.Plugins;

namespace Postback.Tests.Plugins;

public sealed class PluginSetupTests
{
    private static HttpContext Request(string scheme, string host, string pathBase = "")
    {
        var http = new DefaultHttpContext();
        http.Request.Scheme = scheme;
        http.Request.Host = new HostString(host);
        http.Request.PathBase = pathBase;
        return http;
    }

    private static PostbackOptions Config(string? publicBaseUrl) => new() { PublicBaseUrl = publicBaseUrl };

    [Theory]
    [InlineData(null, "http", "127.0.0.1:5080", "", "http://127.0.0.1:5080")]
    [InlineData(null, "https", "hub.example.com", "/postback", "https://hub.example.com/postback")]
    [InlineData("https://api.example.com/", "http", "10.0.0.5:8080", "", "https://api.example.com")]
    public void The_base_url_is_the_configured_public_one_or_the_requests_own(string? configured, string scheme, string host, string pathBase, string expected) =>
        Assert.Equal(expected, PluginInstancesApi.BaseUrl(Request(scheme, host, pathBase), Config(configured)));

    [Fact]
    public void The_Konnektive_mapping_is_seed_000s_plus_the_fields_Postback_adds_with_the_ids_and_secret_filled_in()
    {
        var instance = new PluginInstance { Id = 456, OrganizationId = 123, Name = "k", Kind = "konnektive", Secret = "s3cret-s3cret-s3cret" };
        var setup = PluginInstancesApi.Setup(instance, "https://api.example.com");
        Assert.Equal("https://api.example.com/api/v1/plugins/webhooks/konnektive", setup.PostbackUrl);
        Assert.Equal("https://api.example.com/api/v1/plugins/webhooks/konnektive?organizationId=123&pluginInstanceId=456", setup.WebhookUrl);
        // Seed 000's 25 fields, the six Postback adds, and the secret.
        Assert.Equal(32, setup.FieldMapping.Count);
        foreach (var added in new[] { "dateCreated", "customerId", "campaignId", "totalAmount", "shipFirstName", "shipLastName" })
        {
            Assert.Equal($"[{added}]", setup.FieldMapping[added]!.GetValue<string>());
        }
        Assert.Equal("123", setup.FieldMapping["organizationId"]!.GetValue<string>());
        Assert.Equal("456", setup.FieldMapping["pluginInstanceId"]!.GetValue<string>());
        Assert.Equal("s3cret-s3cret-s3cret", setup.FieldMapping["secret"]!.GetValue<string>());
        Assert.Equal("[shipPostalCode]", setup.FieldMapping["shipPostalCode"]!.GetValue<string>());
        Assert.All(setup.FieldMapping.Where(f => f.Key is not ("organizationId" or "pluginInstanceId" or "secret")),
            f => Assert.Equal($"[{f.Key}]", f.Value!.GetValue<string>()));
    }

    [Fact]
    public void The_operator_chooses_the_order_fields_but_the_fields_that_address_the_postback_stay()
    {
        var instance = new PluginInstance { Id = 456, OrganizationId = 123, Name = "k", Kind = "konnektive", Secret = "s3cret-s3cret-s3cret" };
        var setup = PluginInstancesApi.Setup(instance, "https://api.example.com", new HashSet<string> { "emailAddress", "dateCreated" });
        Assert.Equal(
            ["orderId", "customerType", "organizationId", "emailAddress", "pluginInstanceId", "dateCreated", "secret"],
            setup.FieldMapping.Select(f => f.Key));
    }

    [Fact]
    public void Every_field_of_the_generated_mapping_is_one_the_inbound_plugin_stores()
    {
        var instance = new PluginInstance { Id = 456, OrganizationId = 123, Name = "k", Kind = "konnektive", Secret = "s3cret-s3cret-s3cret" };
        var fields = PluginInstancesApi.Setup(instance, "https://api.example.com").FieldMapping
            .Where(f => f.Key is not ("organizationId" or "pluginInstanceId" or "secret"))
            .ToDictionary(f => f.Key, f => f.Key switch
            {
                "orderId" => "6908",
                "dateCreated" => "2024-07-31 16:24:58",
                "product1_qty" => "1",
                "product1_price" or "totalAmount" => "49.90",
                "emailAddress" => "jane@example.com",
                "phoneNumber" => "5125550123",
                "country" or "shipCountry" => "US",
                "state" or "shipState" => "TX",
                "customerType" => "NEW_SALE",
                "orderStatus" => "COMPLETE",
                _ => "x",
            });
        var result = PostbackMapper.Map(fields, 456, null, DateTimeOffset.UnixEpoch);
        Assert.Empty(result.IgnoredFields);
        Assert.False(result.Errors.Any, string.Join("; ", result.Errors.ToDictionary().Select(e => e.Key + ": " + string.Join(", ", e.Value))));
        Assert.Equal("x", result.Event!.Order.CustomerId);
    }
}
