using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Postback.Orders;
using Postback.Organizations;
using Postback.Tests.Support;

namespace Postback.Tests.Organizations;

public sealed class AuthenticationTests(TwoTenantHub fixture) : IClassFixture<TwoTenantHub>
{
    private HubFactory Hub => fixture.Hub;

    private static async Task<JsonNode> AssertUnauthorizedAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"expected 401, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(response.Headers.WwwAuthenticate, h => h.Scheme == "Bearer");
        var problem = JsonNode.Parse(text)!;
        Assert.Equal(401, problem["status"]!.GetValue<int>());
        Assert.False(string.IsNullOrWhiteSpace(problem["detail"]?.GetValue<string>()));
        return problem;
    }

    private static HttpRequestMessage Request(string method, string path)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (method is "POST" or "PUT")
        {
            request.Content = new StringContent("{}", Encoding.UTF8, "application/json");
        }
        return request;
    }

    public static TheoryData<string, string> ApiCalls => new()
    {
        { "GET", "/api/v1/campaigns" },
        { "POST", "/api/v1/campaigns" },
        { "GET", "/api/v1/campaigns/259" },
        { "PUT", "/api/v1/campaigns/259" },
        { "DELETE", "/api/v1/campaigns/259" },
        { "POST", "/api/v1/events" },
        { "POST", "/api/v1/events/batch" },
        { "GET", "/api/v1/orders/1" },
        { "GET", "/api/v1/fields" },
        { "GET", "/api/v1/export-profiles" },
        { "POST", "/api/v1/export-profiles" },
        { "GET", "/api/v1/export-profiles/1" },
        { "PUT", "/api/v1/export-profiles/1" },
        { "DELETE", "/api/v1/export-profiles/1" },
        { "POST", "/api/v1/export-profiles/1/preview" },
        { "POST", "/api/v1/export-profiles/1/test" },
        { "POST", "/api/v1/export-profiles/import-mapping" },
    };

    [Theory]
    [MemberData(nameof(ApiCalls))]
    public async Task Every_api_call_without_a_key_is_401(string method, string path)
    {
        var response = await Hub.Api(key: null).SendAsync(Request(method, path));
        var problem = await AssertUnauthorizedAsync(response);
        Assert.Contains("API key is required", problem["detail"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(ApiCalls))]
    public async Task Every_api_call_with_a_wrong_key_is_401(string method, string path)
    {
        var response = await Hub.Api("pb_wrong_key_0123456789abcdef").SendAsync(Request(method, path));
        var problem = await AssertUnauthorizedAsync(response);
        Assert.Equal("The API key is not valid.", problem["detail"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("Basic xyz")]
    [InlineData("Basic cGJfdGVzdF9rZXlfMDEyMzQ1Njc4OWFiY2RlZjo=")]
    [InlineData("Bearer")]
    [InlineData("Bearer ")]
    [InlineData("Token pb_test_key_0123456789abcdef")]
    [InlineData("pb_test_key_0123456789abcdef")]
    public async Task Malformed_authorization_header_is_401(string header)
    {
        var client = Hub.Api(key: null);
        var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/campaigns");
        Assert.True(request.Headers.TryAddWithoutValidation("Authorization", header));
        await AssertUnauthorizedAsync(await client.SendAsync(request));
    }

    [Fact]
    public async Task Unauthenticated_event_stores_nothing()
    {
        var before = await Hub.WithDbAsync(db => db.OrderEvents.CountAsync());
        var response = await Hub.Api("pb_wrong_key_0123456789abcdef").PostJsonAsync("/api/v1/events", new
        {
            eventId = "evt-unauth",
            type = "new_sale",
            order = new { orderId = 90001 },
        });
        await AssertUnauthorizedAsync(response);
        Assert.Equal(before, await Hub.WithDbAsync(db => db.OrderEvents.CountAsync()));
        Assert.False(await Hub.WithDbAsync(db => db.Orders.AnyAsync(o => o.OrderId == 90001)));
    }

    [Fact]
    public async Task Bootstrap_key_works_and_the_scheme_is_case_insensitive()
    {
        var response = await Hub.Api().GetAsync("/api/v1/campaigns");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var client = Hub.Api(key: null);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("bearer", HubFactory.ApiKey);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/v1/campaigns")).StatusCode);
    }

    [Fact]
    public async Task Revoked_key_is_401()
    {
        var (organizationId, key) = await Hub.CreateOrganizationAsync("Revoked organization", 5005);
        var hash = Sha256Hex(key);
        await Hub.WithDbAsync(async db =>
        {
            var row = await db.ApiKeys.SingleAsync(k => k.OrganizationId == organizationId && k.KeyHash == hash);
            row.RevokedAt = DateTimeOffset.UtcNow;
            return await db.SaveChangesAsync();
        });
        await AssertUnauthorizedAsync(await Hub.Api(key).GetAsync("/api/v1/campaigns"));
    }

    [Fact]
    public async Task Health_answers_without_a_key()
    {
        var response = await Hub.Api(key: null).GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Healthy", await response.Content.ReadAsStringAsync());

        // A wrong key does not stop the health check either.
        Assert.Equal(HttpStatusCode.OK, (await Hub.Api("pb_wrong_key_0123456789abcdef").GetAsync("/health")).StatusCode);
    }

    [Fact]
    public async Task OpenApi_document_is_served_and_lists_the_api()
    {
        var response = await Hub.Api(key: null).GetAsync("/openapi/v1.json");
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"expected 200, got {(int)response.StatusCode}: {text}");
        var paths = JsonNode.Parse(text)!["paths"]!.AsObject();
        Assert.True(paths.ContainsKey("/api/v1/export-profiles"), "paths: " + string.Join(", ", paths.Select(p => p.Key)));
        Assert.True(paths.ContainsKey("/api/v1/export-profiles/{id}"), "paths: " + string.Join(", ", paths.Select(p => p.Key)));
        Assert.True(paths.ContainsKey("/api/v1/events"), "paths: " + string.Join(", ", paths.Select(p => p.Key)));
        Assert.True(paths.ContainsKey("/api/v1/campaigns"), "paths: " + string.Join(", ", paths.Select(p => p.Key)));
    }

    [Fact]
    public async Task Bootstrap_key_is_stored_hashed()
    {
        var raw = HubFactory.ApiKey;
        var hash = Sha256Hex(raw);
        Assert.False(await Hub.WithDbAsync(db => db.ApiKeys.AnyAsync(k => k.KeyHash == raw)));
        Assert.True(await Hub.WithDbAsync(db => db.ApiKeys.AnyAsync(k => k.KeyHash == hash)));
        // Nothing stores the raw key in any column, nor more than a quarter of it as the prefix.
        var rows = await Hub.WithDbAsync(db => db.ApiKeys.AsNoTracking().ToListAsync());
        Assert.All(rows, k =>
        {
            Assert.DoesNotContain(raw, k.Name, StringComparison.Ordinal);
            Assert.DoesNotContain(raw, k.Prefix, StringComparison.Ordinal);
            Assert.Equal(64, k.KeyHash.Length);
        });
        var bootstrap = Assert.Single(rows, k => k.KeyHash == hash);
        Assert.True(bootstrap.Prefix.Length <= raw.Length / 4);
    }

    private static string Sha256Hex(string key) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));
}
