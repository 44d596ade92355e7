using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Postback.Catalog;
using Postback.Tests.Support;
using static Postback.Tests.Support.Json;

namespace Postback.Tests.Catalog;

public sealed class CampaignsApiTests(TwoTenantHub fixture) : IClassFixture<TwoTenantHub>
{
    private const string Campaigns = "/api/v1/campaigns";

    private HubFactory Hub => fixture.Hub;

    private HttpClient Api() => Hub.Api();

    private HttpClient Other() => Hub.Api(fixture.OtherKey);

    private static StringContent JsonBody(string json) => new(json, Encoding.UTF8, "application/json");

    private Task<int> CountCampaignsAsync() => Hub.WithDbAsync(db => db.Campaigns.CountAsync());

    private Task<int> CountProductsAsync() => Hub.WithDbAsync(db => db.Products.CountAsync());

    private static string Campaign(string campaignId, string name = "Campaign") => $$"""
        {
          "campaignId": "{{campaignId}}",
          "name": "{{name}}",
          "products": [
            {"productId": "{{campaignId.Trim()}}-1", "sku": "SKU-{{campaignId.Trim()}}-1", "name": "Starter kit", "price": 49.95},
            {"productId": "{{campaignId.Trim()}}-2", "sku": "SKU-{{campaignId.Trim()}}-2", "name": "Refill", "price": 19.5, "recurring": true}
          ]
        }
        """;

    private async Task CreateAsync(string json, string? key = null)
    {
        var response = await Hub.Api(key ?? HubFactory.ApiKey).PostRawAsync(Campaigns, json);
        await ReadOkAsync(response, HttpStatusCode.Created);
    }

    // ---------------------------------------------------------------- CRUD

    [Fact]
    public async Task Create_get_list_put_delete_round_trip()
    {
        var api = Api();
        var response = await api.PostRawAsync(Campaigns, Campaign(" C-CRUD ", "  Summer offer  "));
        var created = await ReadOkAsync(response, HttpStatusCode.Created);
        Assert.Equal("/api/v1/campaigns/C-CRUD", response.Headers.Location?.OriginalString);
        Assert.Equal("C-CRUD", created["campaignId"]!.GetValue<string>());
        Assert.Equal("Summer offer", created["name"]!.GetValue<string>());
        var products = created["products"]!.AsArray();
        Assert.Equal(2, products.Count);
        Assert.Equal("C-CRUD-1", products[0]!["productId"]!.GetValue<string>());
        Assert.Equal("SKU-C-CRUD-1", products[0]!["sku"]!.GetValue<string>());
        Assert.Equal(49.95m, products[0]!["price"]!.GetValue<decimal>());
        Assert.False(products[0]!["recurring"]!.GetValue<bool>());
        Assert.True(products[1]!["recurring"]!.GetValue<bool>());

        var got = await ReadOkAsync(await api.GetAsync($"{Campaigns}/C-CRUD"));
        Assert.Equal("Summer offer", got["name"]!.GetValue<string>());
        Assert.Equal(2, got["products"]!.AsArray().Count);

        var list = await ReadOkAsync(await api.GetAsync(Campaigns));
        Assert.Contains(list.AsArray(), c => c!["campaignId"]!.GetValue<string>() == "C-CRUD");

        // PUT replaces name and products; a product id kept across the PUT is fine.
        var put = await ReadOkAsync(await api.PutAsync($"{Campaigns}/C-CRUD", JsonBody("""
            {
              "name": "Winter offer",
              "products": [
                {"productId": "C-CRUD-1", "sku": "SKU-C-CRUD-1", "name": "Starter kit v2", "price": 59},
                {"productId": "C-CRUD-3"}
              ]
            }
            """)));
        Assert.Equal("Winter offer", put["name"]!.GetValue<string>());
        var putProducts = put["products"]!.AsArray();
        Assert.Equal(2, putProducts.Count);
        Assert.Equal("Starter kit v2", putProducts[0]!["name"]!.GetValue<string>());
        Assert.Equal("C-CRUD-3", putProducts[1]!["productId"]!.GetValue<string>());
        Assert.Equal("C-CRUD-3", putProducts[1]!["name"]!.GetValue<string>());
        Assert.Null(putProducts[1]!["sku"]);

        var afterPut = await ReadOkAsync(await api.GetAsync($"{Campaigns}/C-CRUD"));
        Assert.Equal(new[] { "C-CRUD-1", "C-CRUD-3" }, afterPut["products"]!.AsArray().Select(p => p!["productId"]!.GetValue<string>()));
        Assert.Equal(2, await Hub.WithDbAsync(db => db.Products.CountAsync(p => p.ProductId.StartsWith("C-CRUD-"))));

        // PUT with the same campaignId in the body is accepted.
        await ReadOkAsync(await api.PutAsync($"{Campaigns}/C-CRUD", JsonBody("""{"campaignId": "C-CRUD", "name": "Same id", "products": []}""")));
        Assert.Equal(0, await Hub.WithDbAsync(db => db.Products.CountAsync(p => p.ProductId.StartsWith("C-CRUD-"))));

        var delete = await api.DeleteAsync($"{Campaigns}/C-CRUD");
        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        await AssertNotFoundAsync(await api.GetAsync($"{Campaigns}/C-CRUD"));
        await AssertNotFoundAsync(await api.DeleteAsync($"{Campaigns}/C-CRUD"));
        await AssertNotFoundAsync(await api.PutAsync($"{Campaigns}/C-CRUD", JsonBody("""{"name": "Back again"}""")));
    }

    [Fact]
    public async Task Deleting_a_campaign_deletes_its_products()
    {
        await CreateAsync(Campaign("C-DELPROD"));
        Assert.Equal(2, await Hub.WithDbAsync(db => db.Products.CountAsync(p => p.ProductId.StartsWith("C-DELPROD-"))));
        Assert.Equal(HttpStatusCode.NoContent, (await Api().DeleteAsync($"{Campaigns}/C-DELPROD")).StatusCode);
        Assert.Equal(0, await Hub.WithDbAsync(db => db.Products.CountAsync(p => p.ProductId.StartsWith("C-DELPROD-"))));
    }

    // ---------------------------------------------------------------- validation

    public static TheoryData<string, string, string> InvalidCampaigns => new()
    {
        { """{"campaignId": "C-V1", "products": []}""", "name", "is required" },
        { """{"campaignId": "C-V2", "name": "   "}""", "name", "is required" },
        { $$"""{"campaignId": "C-V3", "name": "{{new string('n', 201)}}"}""", "name", "must be at most 200 characters" },
        { """{"campaignId": "C-V4", "name": "Bad\u0001name"}""", "name", "must not contain control characters" },
        { """{"name": "No id"}""", "campaignId", "is required" },
        { """{"campaignId": "", "name": "Empty id"}""", "campaignId", "is required" },
        { """{"campaignId": "bad id!", "name": "Bad id"}""", "campaignId", "must be 1 to 64 letters, digits, '.', '_' or '-'" },
        { """{"campaignId": "259/1", "name": "Slash"}""", "campaignId", "must be 1 to 64 letters" },
        { """{"campaignId": "caf\u00e9", "name": "Accent"}""", "campaignId", "must be 1 to 64 letters" },
        { $$"""{"campaignId": "{{new string('9', 65)}}", "name": "Long id"}""", "campaignId", "must be 1 to 64 letters" },
        { """{"campaignId": "C-V5", "name": "Dup product", "products": [{"productId": "P1"}, {"productId": "P1"}]}""", "products[1].productId", "repeats products[0].productId" },
        { """{"campaignId": "C-V6", "name": "Dup sku", "products": [{"productId": "P1", "sku": "ABC"}, {"productId": "P2", "sku": "abc "}]}""", "products[1].sku", "repeats products[0].sku" },
        { """{"campaignId": "C-V7", "name": "Negative", "products": [{"productId": "P1", "price": -0.01}]}""", "products[0].price", "must be from 0 to 999999999.99" },
        { """{"campaignId": "C-V8", "name": "Huge", "products": [{"productId": "P1", "price": 1000000000}]}""", "products[0].price", "must be from 0 to 999999999.99" },
        { """{"campaignId": "C-V9", "name": "No product id", "products": [{"sku": "ABC"}]}""", "products[0].productId", "is required" },
        { """{"campaignId": "C-V10", "name": "Bad product id", "products": [{"productId": "P 1"}]}""", "products[0].productId", "must be 1 to 64 letters" },
        { """{"campaignId": "C-V11", "name": "Null product", "products": [null]}""", "products[0]", "must be an object" },
        { $$"""{"campaignId": "C-V12", "name": "Long sku", "products": [{"productId": "P1", "sku": "{{new string('s', 65)}}"}]}""", "products[0].sku", "must be at most 64 characters" },
        { $$"""{"campaignId": "C-V13", "name": "Long name", "products": [{"productId": "P1", "name": "{{new string('p', 256)}}"}]}""", "products[0].name", "must be at most 255 characters" },
        { """{"campaignId": "C-V14", "name": "Sku breaks", "products": [{"productId": "P1", "sku": "A\nB"}]}""", "products[0].sku", "must not contain control characters" },
        // Binding: misspelt and mistyped properties.
        { """{"campaignId": "C-V15", "nmae": "Typo"}""", "nmae", "is not a known field" },
        { """{"campaignId": "C-V16", "name": "Typo", "products": [{"productId": "P1", "prize": 5}]}""", "products[0].prize", "is not a known field" },
        { """{"campaignId": "C-V17", "name": "Typed", "products": [{"productId": "P1", "price": "cheap"}]}""", "products[0].price", "has the wrong type" },
        { """{"campaignId": "C-V18", "name": "Typed", "products": {"productId": "P1"}}""", "products", "has the wrong type" },
    };

    [Theory]
    [MemberData(nameof(InvalidCampaigns))]
    public async Task Invalid_campaign_is_refused_naming_the_field_and_nothing_is_stored(string body, string field, string reason)
    {
        var campaigns = await CountCampaignsAsync();
        var products = await CountProductsAsync();
        var response = await Api().PostRawAsync(Campaigns, body);
        var given = await Json.AssertProblemAsync(response, 400, field);
        Assert.Contains(reason, given, StringComparison.Ordinal);
        Assert.Equal(campaigns, await CountCampaignsAsync());
        Assert.Equal(products, await CountProductsAsync());
    }

    [Fact]
    public async Task Too_many_products_are_refused()
    {
        var products = string.Join(",", Enumerable.Range(0, 501).Select(i => $$"""{"productId": "P{{i}}"}"""));
        var before = await CountCampaignsAsync();
        var response = await Api().PostRawAsync(Campaigns, $$"""{"campaignId": "C-MANY", "name": "Many", "products": [{{products}}]}""");
        var reason = await Json.AssertProblemAsync(response, 400, "products");
        Assert.Contains("at most 500 products", reason, StringComparison.Ordinal);
        Assert.Equal(before, await CountCampaignsAsync());
    }

    [Theory]
    [InlineData("{")]
    [InlineData("""{"campaignId": "C-M1", "name": }""")]
    [InlineData("[1, 2]")]
    [InlineData("")]
    public async Task Malformed_json_is_refused_and_nothing_is_stored(string body)
    {
        var before = await CountCampaignsAsync();
        var response = await Api().PostRawAsync(Campaigns, body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"expected 400, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.NotEmpty(JsonNode.Parse(text)!["errors"]!.AsObject());
        Assert.Equal(before, await CountCampaignsAsync());
    }

    [Fact]
    public async Task Put_with_a_different_campaign_id_is_refused_and_changes_nothing()
    {
        await CreateAsync(Campaign("C-MISMATCH", "Original"));
        var api = Api();
        var response = await api.PutAsync($"{Campaigns}/C-MISMATCH", JsonBody("""{"campaignId": "C-OTHER", "name": "Renamed", "products": []}"""));
        var reason = await Json.AssertProblemAsync(response, 400, "campaignId");
        Assert.Contains("must match the campaign in the URL ('C-MISMATCH')", reason, StringComparison.Ordinal);

        response = await api.PutAsync($"{Campaigns}/C-MISMATCH", JsonBody("""{"name": "", "products": [{"productId": "X", "price": -1}]}"""));
        await Json.AssertProblemAsync(response, 400, "name");
        await Json.AssertProblemAsync(response, 400, "products[0].price");

        var got = await ReadOkAsync(await api.GetAsync($"{Campaigns}/C-MISMATCH"));
        Assert.Equal("Original", got["name"]!.GetValue<string>());
        Assert.Equal(2, got["products"]!.AsArray().Count);
        Assert.False(await Hub.WithDbAsync(db => db.Campaigns.AnyAsync(c => c.CampaignId == "C-OTHER")));
    }

    // ---------------------------------------------------------------- conflicts

    [Fact]
    public async Task Creating_an_existing_campaign_is_409()
    {
        await CreateAsync(Campaign("C-DUP", "First"));
        var products = await CountProductsAsync();
        var response = await Api().PostRawAsync(Campaigns, Campaign("C-DUP", "Second"));
        var reason = await Json.AssertProblemAsync(response, 409, "campaignId");
        Assert.Contains("campaign 'C-DUP' already exists", reason, StringComparison.Ordinal);
        Assert.Equal(products, await CountProductsAsync());
        var got = await ReadOkAsync(await Api().GetAsync($"{Campaigns}/C-DUP"));
        Assert.Equal("First", got["name"]!.GetValue<string>());
    }

    [Fact]
    public async Task Deleting_a_campaign_an_export_profile_routes_is_409()
    {
        await CreateAsync(Campaign("C-ROUTED"));
        var profile = await ReadOkAsync(await Api().PostRawAsync("/api/v1/export-profiles", """
            {
              "name": "Routes C-ROUTED",
              "postbackUrl": "https://postingmydata.com/partials.php",
              "mappings": [{"exportName": "first_name", "field": "firstName"}],
              "routes": [{"customerTypes": ["new_sale"], "campaignIds": ["C-ROUTED"]}]
            }
            """), HttpStatusCode.Created);
        var profileId = profile["id"]!.GetValue<long>();

        var response = await Api().DeleteAsync($"{Campaigns}/C-ROUTED");
        var reason = await Json.AssertProblemAsync(response, 409, "campaignId");
        Assert.Contains($"export profile {profileId}", reason, StringComparison.Ordinal);
        await ReadOkAsync(await Api().GetAsync($"{Campaigns}/C-ROUTED"));

        // Once the route no longer names it, it can go.
        Assert.Equal(HttpStatusCode.NoContent, (await Api().DeleteAsync($"/api/v1/export-profiles/{profileId}")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await Api().DeleteAsync($"{Campaigns}/C-ROUTED")).StatusCode);
    }

    // ---------------------------------------------------------------- organizations

    [Fact]
    public async Task Another_organization_cannot_see_or_change_a_campaign()
    {
        await CreateAsync(Campaign("C-ISO", "Mine"));
        var other = Other();

        var list = await ReadOkAsync(await other.GetAsync(Campaigns));
        Assert.Empty(list.AsArray());
        await AssertNotFoundAsync(await other.GetAsync($"{Campaigns}/C-ISO"));
        await AssertNotFoundAsync(await other.PutAsync($"{Campaigns}/C-ISO", JsonBody("""{"name": "Hijacked", "products": []}""")));
        await AssertNotFoundAsync(await other.DeleteAsync($"{Campaigns}/C-ISO"));

        var mine = await ReadOkAsync(await Api().GetAsync($"{Campaigns}/C-ISO"));
        Assert.Equal("Mine", mine["name"]!.GetValue<string>());
        Assert.Equal(2, mine["products"]!.AsArray().Count);
    }

    [Fact]
    public async Task Two_organizations_may_use_the_same_campaign_id()
    {
        await CreateAsync(Campaign("C-SHARED", "Bootstrap's"));
        var (_, thirdKey) = await Hub.CreateOrganizationAsync("Third organization", 3004);
        await CreateAsync(Campaign("C-SHARED", "Third's"), thirdKey);

        var mine = await ReadOkAsync(await Api().GetAsync($"{Campaigns}/C-SHARED"));
        var theirs = await ReadOkAsync(await Hub.Api(thirdKey).GetAsync($"{Campaigns}/C-SHARED"));
        Assert.Equal("Bootstrap's", mine["name"]!.GetValue<string>());
        Assert.Equal("Third's", theirs["name"]!.GetValue<string>());

        // Deleting theirs leaves mine.
        Assert.Equal(HttpStatusCode.NoContent, (await Hub.Api(thirdKey).DeleteAsync($"{Campaigns}/C-SHARED")).StatusCode);
        await ReadOkAsync(await Api().GetAsync($"{Campaigns}/C-SHARED"));
        var theirList = await ReadOkAsync(await Hub.Api(thirdKey).GetAsync(Campaigns));
        Assert.Empty(theirList.AsArray());
    }
}
