using System.Net;
using Microsoft.EntityFrameworkCore;
using Postback.Organizations;
using Postback.Tests.Support;

namespace Postback.Tests.Team;

public sealed class ApiKeysApiTests(TwoTenantHub fixture) : IClassFixture<TwoTenantHub>
{
    private HubFactory Hub => fixture.Hub;

    [Fact]
    public async Task A_key_is_shown_once_works_with_its_role_and_stops_at_once_when_revoked()
    {
        var created = await Json.ReadOkAsync(await Hub.Api().PostJsonAsync("/api/v1/api-keys", new { name = "Call center sync", role = "operator" }), HttpStatusCode.Created);
        var key = created["key"]!.GetValue<string>();
        var id = created["id"]!.GetValue<long>();
        Assert.StartsWith("pb_", key);
        Assert.Equal("operator", created["role"]!.GetValue<string>());
        Assert.StartsWith(created["prefix"]!.GetValue<string>(), key);

        var client = Hub.Api(key);
        await Json.ReadOkAsync(await client.GetAsync("/api/v1/export-profiles"));
        // An operator key may not manage keys.
        Assert.Equal(HttpStatusCode.Forbidden, (await client.GetAsync("/api/v1/api-keys")).StatusCode);

        var listed = (await Json.ReadOkAsync(await Hub.Api().GetAsync("/api/v1/api-keys"))).AsArray();
        var row = Assert.Single(listed, k => k!["id"]!.GetValue<long>() == id)!;
        Assert.Equal("Call center sync", row["name"]!.GetValue<string>());
        Assert.NotNull(row["lastUsedAt"]);
        // The listing never holds key material: no key, no hash.
        Assert.Null(row["key"]);
        Assert.Null(row["keyHash"]);
        var text = listed.ToJsonString();
        Assert.DoesNotContain(key, text, StringComparison.Ordinal);
        Assert.DoesNotContain(key[12..], text, StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.NoContent, (await Hub.Api().DeleteAsync($"/api/v1/api-keys/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/export-profiles")).StatusCode);
        await Json.AssertNotFoundAsync(await Hub.Api().DeleteAsync($"/api/v1/api-keys/{id}"));
        Assert.DoesNotContain((await Json.ReadOkAsync(await Hub.Api().GetAsync("/api/v1/api-keys"))).AsArray(), k => k!["id"]!.GetValue<long>() == id);
    }

    [Fact]
    public async Task The_bootstrap_key_is_an_admin_key_named_bootstrap()
    {
        var listed = (await Json.ReadOkAsync(await Hub.Api().GetAsync("/api/v1/api-keys"))).AsArray();
        var bootstrap = Assert.Single(listed, k => k!["name"]!.GetValue<string>() == "bootstrap")!;
        Assert.Equal("admin", bootstrap["role"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("{\"role\":\"viewer\"}", "name")]
    [InlineData("{\"name\":\"x\",\"role\":\"owner\"}", "role")]
    [InlineData("{\"name\":\"x\"}", "role")]
    public async Task A_bad_key_request_names_the_field(string body, string field)
    {
        var before = await Hub.WithDbAsync(db => db.ApiKeys.CountAsync());
        await Json.AssertProblemAsync(await Hub.Api().PostRawAsync("/api/v1/api-keys", body), 400, field);
        Assert.Equal(before, await Hub.WithDbAsync(db => db.ApiKeys.CountAsync()));
    }

    [Fact]
    public async Task Another_organizations_key_cannot_be_revoked()
    {
        var created = await Json.ReadOkAsync(await Hub.Api().PostJsonAsync("/api/v1/api-keys", new { name = "mine", role = "viewer" }), HttpStatusCode.Created);
        await Json.AssertNotFoundAsync(await Hub.Api(fixture.OtherKey).DeleteAsync($"/api/v1/api-keys/{created["id"]}"));
        await Json.ReadOkAsync(await Hub.Api(created["key"]!.GetValue<string>()).GetAsync("/api/v1/fields"));
    }
}
