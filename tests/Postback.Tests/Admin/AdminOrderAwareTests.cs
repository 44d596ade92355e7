using System.Text.Json.Nodes;
using Microsoft.Playwright;
using Postback.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace Postback.Tests.Admin;

/// Order-aware delivery in the admin UI, in a real Chromium: the three settings on the
/// profile page (a bad one shown next to its field, nothing saved), and the order page with
/// the captured field and the delivery that waited for an earlier one.
[Collection("Admin UI")]
public sealed class AdminOrderAwareTests(AdminBrowser ui) : IClassFixture<AdminBrowser>
{
    [Fact]
    public async Task The_profile_page_sets_ordering_coalescing_and_captures_and_the_order_page_shows_their_effect()
    {
        await using var erp = await Receiver.StartAsync();
        var answers = 0;
        erp.Respond = _ => Interlocked.Increment(ref answers) == 1 ? (500, "busy") : (200, """{"data":{"erpId":"ERP-77"}}""");
        using var api = ui.Api();
        var created = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "ERP in order",
            postbackUrl = erp.Url("/erp"),
            mappings = new[] { new { exportName = "order_id", field = "orderId" } },
            routes = new[] { new { customerTypes = new[] { "new_sale", "upsell" } } },
        }), System.Net.HttpStatusCode.Created);
        var profileId = created["id"]!.GetValue<long>();

        var page = await ui.LoginAsync();
        await page.GotoAsync($"/admin/export-profiles/{profileId}");
        await page.GetByText("Order-aware delivery").ClickAsync();
        await page.GetByLabel("Ordering").SelectOptionAsync("perOrder");
        await page.GetByLabel("Coalesce events of one order within the export delay into one delivery").CheckAsync();
        await page.GetByLabel("Captures from the receiver's JSON answer", new() { Exact = false }).FillAsync("erpOrderNumber = /data/erpId");
        await page.GetByRole(AriaRole.Button, new() { Name = "Update" }).First.ClickAsync();
        // Coalescing needs a delay, and this profile has none: refused next to the box, nothing saved.
        await Expect(page.Locator("#coalesce-error")).ToContainTextAsync("needs an export delay");
        var unchanged = await Json.ReadOkAsync(await api.GetAsync($"/api/v1/export-profiles/{profileId}"));
        Assert.Equal("none", unchanged["ordering"]!.GetValue<string>());
        Assert.Empty(unchanged["captures"]!.AsArray());

        // A capture into a CRM field is refused with the reason, under the captures box.
        await page.GetByLabel("Coalesce events of one order within the export delay into one delivery").UncheckAsync();
        await page.GetByLabel("Captures from the receiver's JSON answer", new() { Exact = false }).FillAsync("firstName = /data/name");
        await page.GetByRole(AriaRole.Button, new() { Name = "Update" }).First.ClickAsync();
        await Expect(page.Locator("#captures-error")).ToContainTextAsync("CRM field");

        await page.GetByLabel("Captures from the receiver's JSON answer", new() { Exact = false }).FillAsync("erpOrderNumber = /data/erpId");
        await page.GetByRole(AriaRole.Button, new() { Name = "Update" }).First.ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Saved the general settings.");
        var saved = await Json.ReadOkAsync(await api.GetAsync($"/api/v1/export-profiles/{profileId}"));
        Assert.Equal("perOrder", saved["ordering"]!.GetValue<string>());
        Assert.Equal("""[{"field":"erpOrderNumber","from":"/data/erpId"}]""", saved["captures"]!.ToJsonString());

        // Two events of one order: the first is answered 500 once, so the second waits for it.
        var ids = new List<long>();
        foreach (var type in new[] { "new_sale", "upsell" })
        {
            var accepted = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/events", new { type, order = new { orderId = 550_001 } }),
                System.Net.HttpStatusCode.Accepted);
            ids.Add(accepted["deliveries"]![0]!["id"]!.GetValue<long>());
        }
        foreach (var id in ids)
        {
            await DeliveryScenario.WaitUntilAsync(async () =>
                (await Json.ReadOkAsync(await api.GetAsync($"/api/v1/deliveries/{id}")))["delivery"]!["status"]!.GetValue<string>() == "succeeded",
                TimeSpan.FromSeconds(60), () => $"delivery {id} succeeded");
        }

        await page.GotoAsync("/admin/orders/550001");
        var capturedRow = page.GetByRole(AriaRole.Table, new() { Name = "Captured fields" }).GetByRole(AriaRole.Row).Nth(1);
        await Expect(capturedRow).ToContainTextAsync("[erpOrderNumber]");
        await Expect(capturedRow).ToContainTextAsync("ERP-77");
        var exports = page.GetByRole(AriaRole.Table, new() { Name = "Exports" });
        await Expect(exports.GetByRole(AriaRole.Row).Nth(2)).ToContainTextAsync($"for delivery {ids[0]}");

        await page.GotoAsync($"/admin/deliveries/{ids[1]}");
        await Expect(page.GetByTestId("delivery-waited")).ToContainTextAsync($"waited for delivery {ids[0]}");
    }
}
