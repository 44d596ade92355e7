using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Postback.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace Postback.Tests.Admin;

/// Every page that reads deliveries, orders and history, over PostgreSQL.
// One Chromium at a time: the admin classes run one after the other.
[Collection("Admin UI")]
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
        await PageWait.WaitForAsync(page, () => page.Locator("[data-status=succeeded]").TextContentAsync(), "1");
        await Expect(page.Locator("[data-status=succeeded]")).ToHaveTextAsync("1");
        await Expect(page.Locator("[data-fact=pending]")).ToHaveTextAsync("0");

        await page.GotoAsync($"/admin/deliveries?profileId={profile["id"]}&status=succeeded&from=2000-01-01T00:00");
        await page.GetByRole(AriaRole.Link, new() { NameRegex = new Regex("^Delivery \\d+$") }).ClickAsync();
        await Expect(page.GetByLabel("Attempt 1 request")).ToContainTextAsync($"GET {ui.Receiver.Url("/pg")}?first_name=Pat");
        await Expect(page.GetByLabel("Attempt 1 response")).ToContainTextAsync("stored on pg");

        await page.GotoAsync("/admin/orders");
        await page.GetByLabel("Order id, customer id, name, e-mail or phone").FillAsync("pg-cust");
        await page.GetByRole(AriaRole.Button, new() { Name = "Find" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Customer pg-cust" })).ToBeVisibleAsync();
        await page.GetByRole(AriaRole.Link, new() { NameRegex = new Regex("^View what was sent") }).ClickAsync();
        await Expect(page.GetByTestId("delivery-status")).ToHaveTextAsync("succeeded");

        await page.GotoAsync("/admin/orders/4242");
        await Expect(page.GetByRole(AriaRole.Table, new() { Name = "Exports" })).ToContainTextAsync("PG profile");
    }

    [Fact]
    public async Task The_plugin_sku_settings_and_confirmation_pages_work_on_postgres()
    {
        var api = ui.Api();
        await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/campaigns", new
        {
            campaignId = "pg-259", name = "PG Lander", products = new[] { new { productId = "PG-P1", sku = "PG-KIT", name = "Kit", price = 4.95 } },
        }), System.Net.HttpStatusCode.Created);
        var instance = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/plugin-instances", new
        {
            name = "PG Konnektive", kind = "konnektive", campaignId = "pg-259", importUnknownSkus = true,
        }), System.Net.HttpStatusCode.Created);
        using (var crm = new HttpClient())
        {
            var answer = await crm.PostAsync(ui.BaseUrl + "/api/v1/plugins/webhooks/konnektive", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["orderId"] = "5151", ["customerType"] = "NEW_SALE", ["product1_sku"] = "PG-ODD", ["product1_name"] = "Odd thing",
                ["pluginInstanceId"] = instance["id"]!.ToString(), ["secret"] = instance["secret"]!.GetValue<string>(),
            }));
            await Json.ReadOkAsync(answer);
        }
        ui.Receiver.Respond = r => r.Path == "/pg-confirm" ? (200, """{"status":1,"message":"Booked"}""") : (200, "stored on pg");

        var page = await ui.LoginAsync(AdminBrowser.Password);
        await page.GotoAsync($"/admin/plugins/{instance["id"]}");
        var log = page.GetByRole(AriaRole.Table, new() { Name = "Inbound log" });
        await Expect(log).ToContainTextAsync("accepted");
        await Expect(log).ToContainTextAsync("secret=********");

        await page.GotoAsync("/admin/skus");
        await page.GetByLabel("Product for PG-ODD").SelectOptionAsync("PG-P1");
        await page.GetByRole(AriaRole.Button, new() { Name = "Link PG-ODD" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToHaveTextAsync("Linked the SKU PG-ODD to the product PG-P1: 1 order line in 1 order resolved.");

        await page.GotoAsync("/admin/settings");
        await page.GetByLabel("Enable the order confirmation webhook").CheckAsync();
        await page.GetByLabel("Webhook URL").FillAsync(ui.Receiver.Url("/pg-confirm"));
        await page.GetByLabel("Notification e-mails").FillAsync("pg@example.com");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToHaveTextAsync("Saved the order confirmation webhook settings.");

        await page.GotoAsync("/admin/orders/5151");
        await page.GetByRole(AriaRole.Button, new() { Name = "Confirm", Exact = true }).ClickAsync();
        await PageWait.WaitForAsync(page, () => page.GetByTestId("confirmation-status").TextContentAsync(), "confirmed");
        await Expect(page.GetByTestId("confirmation-message")).ToHaveTextAsync("Booked");
        await page.GetByRole(AriaRole.Link, new() { Name = "Requests and responses of the confirmation" }).ClickAsync();
        await Expect(page.GetByLabel("Send 1 attempt 1 response")).ToContainTextAsync("Booked");
    }
}
