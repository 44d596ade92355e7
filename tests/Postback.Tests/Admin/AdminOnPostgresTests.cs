using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Postback.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace Postback.Tests.Admin;

/// Every page that reads deliveries, orders and history, over PostgreSQL.
public sealed class AdminOnPostgresTests(AdminBrowserOnPostgres ui) : IClassFixture<AdminBrowserOnPostgres>
{
    [Fact]
    public async Task The_pages_show_a_delivery_its_order_and_the_customer_history_on_postgres()
    {
        var api = ui.Api();
        ui.Receiver.Respond = _ => (200, "stored on pg");
        var profile = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "PG profile", postbackUrl = ui.Receiver.Url("/pg"), exportDelayMinutes = 0,
            mappings = new[] { new { exportName = "first_name", field = "firstName" } },
            routes = new[] { new { customerTypes = new[] { "new_sale" } } },
        }), System.Net.HttpStatusCode.Created);
        await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/events", new
        {
            eventId = "pg-1", type = "new_sale", order = new { orderId = 4242, customerId = "pg-cust", firstName = "Pat" },
        }), System.Net.HttpStatusCode.Accepted);

        var page = await ui.LoginAsync(AdminBrowser.Password);
        for (var i = 0; i < 300 && (await page.Locator("[data-status=succeeded]").TextContentAsync())?.Trim() != "1"; i++)
        {
            await Task.Delay(100);
            await page.ReloadAsync();
        }
        await Expect(page.Locator("[data-status=succeeded]")).ToHaveTextAsync("1");
        await Expect(page.Locator("[data-fact=pending]")).ToHaveTextAsync("0");

        await page.GotoAsync($"/admin/deliveries?profileId={profile["id"]}&status=succeeded&from=2000-01-01T00:00");
        await page.GetByRole(AriaRole.Link, new() { NameRegex = new Regex("^Delivery \\d+$") }).ClickAsync();
        await Expect(page.GetByLabel("Attempt 1 request")).ToContainTextAsync($"GET {ui.Receiver.Url("/pg")}?first_name=Pat");
        await Expect(page.GetByLabel("Attempt 1 response")).ToContainTextAsync("stored on pg");

        await page.GotoAsync("/admin/orders");
        await page.GetByLabel("Order id or customer id").FillAsync("pg-cust");
        await page.GetByRole(AriaRole.Button, new() { Name = "Open" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Customer pg-cust" })).ToBeVisibleAsync();
        await page.GetByRole(AriaRole.Link, new() { NameRegex = new Regex("^View what was sent") }).ClickAsync();
        await Expect(page.GetByTestId("delivery-status")).ToHaveTextAsync("succeeded");

        await page.GotoAsync("/admin/orders/4242");
        await Expect(page.GetByRole(AriaRole.Table, new() { Name = "Exports" })).ToContainTextAsync("PG profile");
    }
}
