using System.Net;
using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;
using Postback.Catalog;
using Postback.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace Postback.Tests.Admin;

/// The catalog screens: campaigns with their products, created and edited in the admin UI with
/// the API's validation next to each field, and reachable from the routing and SKU pages.
[Collection("Admin UI")]
public sealed class AdminCatalogTests(AdminBrowser ui) : IClassFixture<AdminBrowser>
{
    [Fact]
    public async Task An_operator_creates_a_campaign_adds_edits_and_removes_products_and_sees_errors_next_to_the_field()
    {
        var page = await ui.LoginAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "Campaigns", Exact = true }).First.ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Campaigns", Exact = true }).First).ToBeVisibleAsync();

        // A bad id: the error sits next to its field, nothing is stored.
        await page.GetByLabel("Campaign id (as in your CRM)").FillAsync("has space");
        await page.GetByLabel("Campaign name").FillAsync("Summer Lander");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create campaign" }).ClickAsync();
        await Expect(page.Locator("#campaignId-error")).ToContainTextAsync("letters, digits");
        await Expect(page.GetByLabel("Campaign id (as in your CRM)")).ToHaveAttributeAsync("aria-invalid", "true");
        Assert.Equal(0, await ui.Hub.WithDbAsync(db => db.Campaigns.CountAsync(c => c.Name == "Summer Lander")));

        var campaignId = "UI-" + Guid.NewGuid().ToString("N")[..8];
        await page.GetByLabel("Campaign id (as in your CRM)").FillAsync(campaignId);
        await page.GetByRole(AriaRole.Button, new() { Name = "Create campaign" }).ClickAsync();
        await Expect(page).ToHaveURLAsync(new Regex($"/admin/campaigns/{campaignId}"));
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Created the campaign Summer Lander");

        // Two products in the blank rows; a bad price is refused next to its input, with a banner.
        await page.GetByLabel("Product id, row 1").FillAsync("12");
        await page.GetByLabel("SKU, row 1").FillAsync("TRIAL-" + campaignId);
        await page.GetByLabel("Name, row 1").FillAsync("Trial bottle");
        await page.GetByLabel("Price, row 1").FillAsync("4.95");
        await page.GetByLabel("Product id, row 2").FillAsync("13");
        await page.GetByLabel("Name, row 2").FillAsync("Monthly refill");
        await page.GetByLabel("Price, row 2").FillAsync("abc");
        await page.GetByLabel("Recurring, row 2").CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Save campaign" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Alert)).ToContainTextAsync("The campaign was not saved");
        await Expect(page.Locator("#p1-error")).ToContainTextAsync("price: must be an amount");
        await Expect(page.GetByLabel("Price, row 2")).ToHaveAttributeAsync("aria-invalid", "true");
        // What was typed stays.
        await Expect(page.GetByLabel("Name, row 2")).ToHaveValueAsync("Monthly refill");
        Assert.Equal(0, await ui.Hub.WithDbAsync(db => db.Products.CountAsync(p => db.Set<Campaign>().Any(c => c.Id == p.CampaignKey && c.CampaignId == campaignId))));

        // A repeated product id: the API's own rule, shown on the row that repeats it.
        await page.GetByLabel("Price, row 2").FillAsync("29.90");
        await page.GetByLabel("Product id, row 2").FillAsync("12");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save campaign" }).ClickAsync();
        await Expect(page.Locator("#p1-error")).ToContainTextAsync("productId: repeats");

        await page.GetByLabel("Product id, row 2").FillAsync("13");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save campaign" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("with 2 product(s)");
        var stored = await Json.ReadOkAsync(await ui.Api().GetAsync($"/api/v1/campaigns/{campaignId}"));
        var products = stored["products"]!.AsArray();
        Assert.Equal(2, products.Count);
        Assert.Equal(4.95m, products[0]!["price"]!.GetValue<decimal>());
        Assert.True(products[1]!["recurring"]!.GetValue<bool>());

        // Edited in place, and one removed.
        await page.GetByLabel("Name, row 1").FillAsync("Trial bottle (30 ct)");
        await page.GetByLabel("Remove row 2").CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Save campaign" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("with 1 product(s)");
        products = (await Json.ReadOkAsync(await ui.Api().GetAsync($"/api/v1/campaigns/{campaignId}")))["products"]!.AsArray();
        Assert.Equal("Trial bottle (30 ct)", Assert.Single(products)!["name"]!.GetValue<string>());

        // The SKU and routing pages lead here.
        await page.GotoAsync("/admin/skus");
        await page.GetByRole(AriaRole.Link, new() { Name = "Campaigns", Exact = true }).Last.ClickAsync();
        await Expect(page).ToHaveURLAsync(new Regex("/admin/campaigns$"));
        await Expect(page.GetByRole(AriaRole.Row).Filter(new() { HasText = campaignId })).ToContainTextAsync("Summer Lander");
    }

    [Fact]
    public async Task A_campaign_a_route_uses_is_not_deleted_and_the_page_says_why()
    {
        var campaignId = "ROUTED-" + Guid.NewGuid().ToString("N")[..6];
        Assert.Equal(HttpStatusCode.Created, (await ui.Api().PostJsonAsync("/api/v1/campaigns", new { campaignId, name = "Routed lander", products = new[] { new { productId = "77", name = "Widget" } } })).StatusCode);
        var profile = await Json.ReadOkAsync(await ui.Api().PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "Routes " + campaignId,
            postbackUrl = "https://callcenter.example.com/in",
            mappings = new[] { new { exportName = "first_name", field = "firstName" } },
            routes = new[] { new { customerTypes = new[] { "new_sale" }, campaignIds = new[] { campaignId } } },
        }), HttpStatusCode.Created);

        var page = await ui.LoginAsync();
        await page.GotoAsync($"/admin/export-profiles/{profile["id"]}#routing");
        await page.GetByRole(AriaRole.Link, new() { Name = "manage campaigns and products" }).ClickAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "Routed lander" }).ClickAsync();
        await Expect(page.GetByText("Used by export profile Routes " + campaignId)).ToBeVisibleAsync();

        page.Dialog += (_, dialog) => dialog.AcceptAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete campaign" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("was not deleted");
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("change its routing first");
        Assert.Equal(HttpStatusCode.OK, (await ui.Api().GetAsync($"/api/v1/campaigns/{campaignId}")).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await ui.Api().DeleteAsync($"/api/v1/export-profiles/{profile["id"]}")).StatusCode);
        await page.ReloadAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete campaign" }).ClickAsync();
        await Expect(page).ToHaveURLAsync(new Regex("/admin/campaigns$"));
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Deleted the campaign Routed lander");
        Assert.Equal(HttpStatusCode.NotFound, (await ui.Api().GetAsync($"/api/v1/campaigns/{campaignId}")).StatusCode);
    }

    [Fact]
    public async Task A_viewer_reads_the_catalog_but_cannot_change_it()
    {
        var key = (await Json.ReadOkAsync(await ui.Api().PostJsonAsync("/api/v1/api-keys", new { name = "catalog viewer", role = "viewer" }), HttpStatusCode.Created))["key"]!.GetValue<string>();
        var page = await ui.LoginAsync(key);
        await page.GotoAsync("/admin/campaigns");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Campaigns", Exact = true }).First).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Create campaign" })).ToHaveCountAsync(0);
    }
}
