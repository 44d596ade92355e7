using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Postback.Notifications;
using Postback.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace Postback.Tests.Admin;

/// What a new operator tripped over: errors out of sight, mappings that could not be edited,
/// typos in merge tags accepted silently, snake_case customer types, a GET example for a JSON
/// POST, orders findable only by id, silent states, UTC only, a menu that broke on a phone,
/// and JSON answers for unknown admin pages.
[Collection("Admin UI")]
public sealed class AdminEverydayUseTests(AdminBrowser ui) : IClassFixture<AdminBrowser>
{
    private async Task<long> ProfileAsync(string name, params object[] mappings)
    {
        var created = await Json.ReadOkAsync(await ui.Api().PostJsonAsync("/api/v1/export-profiles", new
        {
            name,
            postbackUrl = ui.Receiver.Url("/everyday"),
            mappings,
            routes = new[] { new { customerTypes = new[] { "new_sale" } } },
        }), HttpStatusCode.Created);
        return created["id"]!.GetValue<long>();
    }

    [Fact]
    public async Task A_mapping_is_edited_in_place_and_a_typo_in_a_merge_tag_is_flagged_with_the_likely_field()
    {
        var id = await ProfileAsync("Edit in place " + Guid.NewGuid().ToString("N")[..6],
            new { exportName = "first_name", field = "firstName" },
            new { exportName = "email", field = "emailAdress" },
            new { exportName = "last", @static = "[lastName" });
        var page = await ui.LoginAsync();
        await page.GotoAsync($"/admin/export-profiles/{id}#mappings");

        var warnings = page.Locator("#mapping-warnings");
        await Expect(warnings).ToContainTextAsync("[emailAdress] is not a known field — did you mean [emailAddress]?");
        await Expect(warnings).ToContainTextAsync("\"[lastName\" is sent as it is, not as a merge tag — did you mean the field [lastName]?");

        await page.GetByRole(AriaRole.Link, new() { Name = "Edit email" }).ClickAsync();
        await Expect(page.GetByLabel("Or another order field of mapping 2")).ToHaveValueAsync("emailAdress");
        await page.GetByLabel("Or another order field of mapping 2").FillAsync("");
        await page.GetByLabel("Field of mapping 2", new() { Exact = true }).SelectOptionAsync("emailAddress");
        await page.GetByLabel("Export Name of mapping 2").FillAsync("email_address");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save mapping" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Saved the field mapping email_address");
        await Expect(warnings).Not.ToContainTextAsync("emailAdress");

        // Still in its place, between first_name and last.
        var stored = await Json.ReadOkAsync(await ui.Api().GetAsync($"/api/v1/export-profiles/{id}"));
        Assert.Equal(["first_name", "email_address", "last"], stored["mappings"]!.AsArray().Select(m => m!["exportName"]!.GetValue<string>()));
        Assert.Equal("emailAddress", stored["mappings"]![1]!["field"]!.GetValue<string>());

        // A bad edit is refused next to its input, and the row stays open with what was typed.
        await page.GetByRole(AriaRole.Link, new() { Name = "Edit last" }).ClickAsync();
        await page.GetByLabel("Export Name of mapping 3").FillAsync("first_name");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save mapping" }).ClickAsync();
        await Expect(page.Locator("#edit-exportName-error")).ToContainTextAsync("unique");
        await Expect(page.GetByLabel("Export Name of mapping 3")).ToHaveValueAsync("first_name");
        await Expect(page.GetByRole(AriaRole.Alert).Filter(new() { HasText = "Nothing was saved" })).ToContainTextAsync("Field Mappings");
    }

    [Fact]
    public async Task A_bad_route_shows_a_banner_naming_the_section_and_brings_the_section_into_view()
    {
        var id = await ProfileAsync("Banner " + Guid.NewGuid().ToString("N")[..6], new { exportName = "first_name", field = "firstName" });
        var page = await ui.LoginAsync();
        await page.SetViewportSizeAsync(1280, 700);
        await page.GotoAsync($"/admin/export-profiles/{id}");

        // No customer type ticked: refused.
        await page.GetByRole(AriaRole.Button, new() { Name = "Add route" }).ClickAsync();
        var banner = page.Locator("#failed-banner");
        await Expect(banner).ToContainTextAsync("Nothing was saved: see Profile Routing");
        await Expect(page.Locator("#route-customerTypes-error")).Not.ToBeEmptyAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Profile Routing" })).ToBeInViewportAsync();
        // The banner stays in view too, at the top of the window.
        await Expect(banner).ToBeInViewportAsync();

        // Customer types are labelled checkboxes in the CRMs' words.
        var types = page.GetByRole(AriaRole.Group, new() { Name = "Customer types" });
        await types.GetByLabel("New Sale", new() { Exact = true }).CheckAsync();
        await types.GetByLabel("RMA Issued", new() { Exact = true }).CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Add route" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Added the route");
        await Expect(page.GetByRole(AriaRole.Table, new() { Name = "Routes" })).ToContainTextAsync("New Sale, RMA Issued");
    }

    [Fact]
    public async Task The_example_line_shows_the_real_request_a_JSON_POST_with_its_body()
    {
        var id = await ProfileAsync("JSON example " + Guid.NewGuid().ToString("N")[..6],
            new { exportName = "header:Content-Type", @static = "application/json" },
            new { exportName = "first_name", field = "firstName" },
            new { exportName = "list_id", @static = "400" });
        var page = await ui.LoginAsync();
        await page.GotoAsync($"/admin/export-profiles/{id}#mappings");
        await Expect(page.Locator("#template-method")).ToHaveTextAsync("POST");
        await Expect(page.Locator("#template")).ToHaveTextAsync(ui.Receiver.Url("/everyday"));
        await Expect(page.Locator("#template-request")).ToContainTextAsync("Content-Type: application/json");
        await Expect(page.Locator("#template-request")).ToContainTextAsync("""{"first_name":"[firstName]","list_id":"400"}""");
    }

    [Fact]
    public async Task Orders_are_found_by_e_mail_name_and_phone_and_the_order_page_has_labelled_sections()
    {
        var orderId = Random.Shared.Next(3_000_000, 3_999_999);
        var email = $"marta.{orderId}@example.com";
        Assert.Equal(HttpStatusCode.Created, (await ui.Api().PostJsonAsync("/api/v1/campaigns", new { campaignId = "C" + orderId, name = "Winter Lander", products = Array.Empty<object>() })).StatusCode);
        var accepted = await ui.Api().PostJsonAsync("/api/v1/events", new
        {
            type = "new_sale",
            order = new
            {
                orderId, customerId = "cust-" + orderId, campaignId = "C" + orderId, firstName = "Marta", lastName = "Kowalska" + orderId,
                emailAddress = email, phoneNumber = "512555" + (orderId % 10_000).ToString("D4", CultureInfo.InvariantCulture),
                shipCity = "Austin", totalAmount = "49.90", orderStatus = "COMPLETE", loyaltyTier = "gold",
            },
        });
        Assert.True(accepted.IsSuccessStatusCode, await accepted.Content.ReadAsStringAsync());

        var page = await ui.LoginAsync();
        await page.GotoAsync("/admin/orders");
        var find = page.GetByLabel("Order id, customer id, name, e-mail or phone");
        await find.FillAsync(email.ToUpperInvariant());
        await page.GetByRole(AriaRole.Button, new() { Name = "Find" }).ClickAsync();
        var matches = page.GetByRole(AriaRole.Table, new() { Name = "Matching orders" });
        var row = matches.GetByRole(AriaRole.Row).Filter(new() { HasText = orderId.ToString(CultureInfo.InvariantCulture) });
        await Expect(row).ToContainTextAsync("Marta Kowalska" + orderId);
        await Expect(row).ToContainTextAsync("COMPLETE");
        await Expect(row).ToContainTextAsync("New Sale");
        await Expect(row).ToContainTextAsync("Winter Lander");

        await find.FillAsync("kowalska" + orderId + " marta");
        await page.GetByRole(AriaRole.Button, new() { Name = "Find" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Table, new() { Name = "Matching orders" }).GetByRole(AriaRole.Row)).ToHaveCountAsync(2);

        await find.FillAsync("(512) 555-" + (orderId % 10_000).ToString("D4", CultureInfo.InvariantCulture));
        await page.GetByRole(AriaRole.Button, new() { Name = "Find" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Table, new() { Name = "Matching orders" })).ToContainTextAsync(email);

        await page.GetByRole(AriaRole.Table, new() { Name = "Matching orders" }).GetByRole(AriaRole.Link, new() { Name = orderId.ToString(CultureInfo.InvariantCulture), Exact = true }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Region, new() { Name = "Customer" })).ToContainTextAsync(email);
        await Expect(page.GetByRole(AriaRole.Region, new() { Name = "Shipping address" })).ToContainTextAsync("Austin");
        await Expect(page.GetByRole(AriaRole.Region, new() { Name = "Campaign" })).ToContainTextAsync($"Winter Lander (C{orderId})");
        await Expect(page.GetByRole(AriaRole.Region, new() { Name = "Extra fields" })).ToContainTextAsync("[loyaltyTier]");

        await page.GetByRole(AriaRole.Link, new() { Name = "cust-" + orderId }).First.ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToContainTextAsync("Marta Kowalska" + orderId);
    }

    [Fact]
    public async Task The_menu_fits_a_390_pixel_screen_and_every_entry_stays_visible_and_reachable()
    {
        var page = await ui.LoginAsync();
        await page.SetViewportSizeAsync(390, 844);
        await page.GotoAsync("/admin/export-profiles");
        var header = await page.Locator("header.top").BoundingBoxAsync();
        Assert.NotNull(header);
        var links = page.GetByRole(AriaRole.Navigation, new() { Name = "Main" }).GetByRole(AriaRole.Link);
        var count = await links.CountAsync();
        Assert.True(count >= 8, $"{count} menu entries");
        for (var i = 0; i < count; i++)
        {
            var link = links.Nth(i);
            await Expect(link).ToBeVisibleAsync();
            var box = await link.BoundingBoxAsync();
            Assert.NotNull(box);
            // Inside the window and on the dark header, not past its edge on the light page.
            Assert.True(box!.X >= 0 && box.X + box.Width <= 390, $"{await link.TextContentAsync()} at x={box.X}, width {box.Width}");
            Assert.True(box.Y >= header!.Y && box.Y + box.Height <= header.Y + header.Height, $"{await link.TextContentAsync()} at y={box.Y} outside the header");
        }
        Assert.True(await page.EvaluateAsync<bool>("() => document.querySelector('header.top').scrollWidth <= 390"), "the menu runs past the window's edge");
        await links.Filter(new() { HasText = "Deliveries" }).ClickAsync();
        await Expect(page).ToHaveURLAsync(new Regex("/admin/deliveries$"));
    }

    [Fact]
    public async Task An_unknown_admin_page_is_a_page_with_the_menu_not_JSON()
    {
        var page = await ui.LoginAsync();
        var response = await page.GotoAsync("/admin/no-such-page/42");
        Assert.Equal(404, response!.Status);
        Assert.StartsWith("text/html", response.Headers["content-type"]);
        await Expect(page.GetByRole(AriaRole.Alert)).ToHaveTextAsync("There is no page /admin/no-such-page/42.");
        await Expect(page.GetByRole(AriaRole.Navigation, new() { Name = "Main" })).ToBeVisibleAsync();
    }

    [Fact]
    public async Task The_plugin_page_warns_that_a_CRM_cannot_reach_a_loopback_address()
    {
        var created = await Json.ReadOkAsync(await ui.Api().PostJsonAsync("/api/v1/plugin-instances", new { name = "Loopback " + Guid.NewGuid().ToString("N")[..6], kind = "konnektive" }), HttpStatusCode.Created);
        var page = await ui.LoginAsync();
        await page.GotoAsync($"/admin/plugins/{created["id"]}");
        await Expect(page.Locator("#base-url-warning")).ToContainTextAsync("Your CRM cannot reach these URLs");
        await Expect(page.Locator("#base-url-warning")).ToContainTextAsync("Postback:PublicBaseUrl");
    }

    [Fact]
    public async Task Copy_buttons_select_the_text_where_the_clipboard_is_not_available()
    {
        var created = await Json.ReadOkAsync(await ui.Api().PostJsonAsync("/api/v1/plugin-instances", new { name = "Copy " + Guid.NewGuid().ToString("N")[..6], kind = "konnektive" }), HttpStatusCode.Created);
        var page = await ui.LoginAsync();
        await page.GotoAsync($"/admin/plugins/{created["id"]}");
        // As on a plain-HTTP LAN address: no clipboard API.
        await page.EvaluateAsync("() => Object.defineProperty(navigator, 'clipboard', { value: undefined })");
        var button = page.GetByRole(AriaRole.Button, new() { Name = "Copy the webhook URL", Exact = true });
        await button.ClickAsync();
        await Expect(button).ToHaveTextAsync("Selected: press Ctrl+C");
        var selected = await page.EvaluateAsync<string>("() => window.getSelection().toString()");
        Assert.Equal(await page.Locator("#webhook-url").TextContentAsync(), selected);
    }

    [Fact]
    public async Task Times_show_in_the_organizations_time_zone_with_UTC_on_hover()
    {
        var other = ui.Api(ui.OtherKey);
        var organization = await Json.ReadOkAsync(await other.GetAsync("/api/v1/organization"));
        var put = await other.PutJsonAsync("/api/v1/organization", new { name = organization["name"]!.GetValue<string>(), companyId = organization["companyId"]!.GetValue<long>(), timeZone = "America/New_York" });
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        var orderId = Random.Shared.Next(4_000_000, 4_999_999);
        Assert.True((await other.PostJsonAsync("/api/v1/events", new { type = "partial", order = new { orderId, firstName = "Tz" } })).IsSuccessStatusCode);
        var stored = await Json.ReadOkAsync(await other.GetAsync($"/api/v1/orders/{orderId}"));
        var created = DateTimeOffset.Parse(stored["createdAt"]!.GetValue<string>(), CultureInfo.InvariantCulture);

        var page = await ui.LoginAsync(ui.OtherKey);
        await page.GotoAsync($"/admin/orders/{orderId}");
        var received = page.GetByRole(AriaRole.Term).Filter(new() { HasText = "First received" }).Locator("xpath=following-sibling::dd[1]/time");
        var zone = TimeZoneInfo.FindSystemTimeZoneById("America/New_York");
        var local = TimeZoneInfo.ConvertTime(created, zone);
        await Expect(received).ToHaveTextAsync(local.ToString("yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture));
        await Expect(received).ToHaveAttributeAsync("title", created.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + " UTC");
    }

    [Fact]
    public async Task Waiting_alert_e_mails_without_SMTP_get_a_banner()
    {
        await ui.Hub.WithDbAsync(async db =>
        {
            db.EmailOutbox.Add(new Postback.Notifications.OutboxEmail
            {
                OrganizationId = 1, DedupKey = "banner-" + Guid.NewGuid().ToString("N"), Recipient = "ops@example.com",
                Subject = "Order confirmation failed", Body = "x", DueAt = DateTimeOffset.UtcNow, CreatedAt = DateTimeOffset.UtcNow,
            });
            return await db.SaveChangesAsync();
        });
        var page = await ui.LoginAsync();
        await Expect(page.Locator("#smtp-banner")).ToContainTextAsync("waiting: SMTP is not configured");
        await page.GotoAsync("/admin/settings");
        await Expect(page.Locator("#smtp-banner")).ToContainTextAsync("Postback:Smtp:Host");
    }

    [Fact]
    public async Task A_pending_delivery_page_refreshes_itself_when_the_delivery_finishes()
    {
        var path = "/live-" + Guid.NewGuid().ToString("N")[..8];
        var failing = true;
        var previous = ui.Receiver.Respond;
        ui.Receiver.Respond = r => r.Path == path ? (failing ? (500, "down") : (200, "OK")) : previous(r);
        try
        {
            var created = await Json.ReadOkAsync(await ui.Api().PostJsonAsync("/api/v1/export-profiles", new
            {
                name = "Live " + path,
                postbackUrl = ui.Receiver.Url(path),
                mappings = new[] { new { exportName = "first_name", field = "firstName" } },
                routes = new[] { new { customerTypes = new[] { "new_sale" } } },
            }), HttpStatusCode.Created);
            var profileId = created["id"]!.GetValue<long>();
            var orderId = Random.Shared.Next(5_000_000, 5_999_999);
            var accepted = await Json.ReadOkAsync(await ui.Api().PostJsonAsync("/api/v1/events", new { type = "new_sale", order = new { orderId, firstName = "Live" } }), HttpStatusCode.Accepted);
            var deliveryId = accepted["deliveries"]!.AsArray().Single(d => d!["profileId"]!.GetValue<long>() == profileId)!["id"]!.GetValue<long>();

            var page = await ui.LoginAsync();
            await page.GotoAsync($"/admin/deliveries/{deliveryId}");
            await Expect(page.GetByLabel("Attempt 1 response")).ToContainTextAsync("down");
            await Expect(page.GetByTestId("delivery-status")).ToHaveTextAsync("pending");

            failing = false;
            Assert.True((await ui.Api().PostAsync($"/api/v1/deliveries/{deliveryId}/retry", null)).IsSuccessStatusCode);
            // No reload: the page fetches itself while the delivery is pending.
            await Expect(page.GetByTestId("delivery-status")).ToHaveTextAsync("succeeded");
        }
        finally
        {
            ui.Receiver.Respond = previous;
        }
    }
}
