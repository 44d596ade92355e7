using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;
using Postback.ExportProfiles;
using Postback.Organizations;
using Postback.Tests.Support;
using static Microsoft.Playwright.Assertions;
using static Postback.Tests.Admin.PageWait;

namespace Postback.Tests.Admin;

/// The seeds' walkthroughs, clicked through in a real Chromium against the real hub.
// One Chromium at a time: the admin classes run one after the other.
[Collection("Admin UI")]
public sealed class AdminUiTests(AdminBrowser ui) : IClassFixture<AdminBrowser>
{
    [Fact]
    public async Task Admin_pages_need_a_login_and_a_wrong_key_is_refused()
    {
        var page = await ui.NewPageAsync();
        await page.GotoAsync("/admin/deliveries");
        await Expect(page).ToHaveURLAsync(new Regex("/admin/login\\?returnUrl=%2Fadmin%2Fdeliveries$"));

        await page.GetByLabel("API key or password").FillAsync("pb_not_a_real_key_at_all");
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await Expect(page.Locator("#secret-error")).ToHaveTextAsync("That is not a valid API key or password.");

        await page.GetByLabel("API key or password").FillAsync(HubFactory.ApiKey);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await Expect(page).ToHaveURLAsync(ui.BaseUrl + "/admin/deliveries");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Deliveries", Exact = true })).ToBeVisibleAsync();

        var headers = await (await page.ReloadAsync())!.AllHeadersAsync();
        Assert.Contains("frame-ancestors 'none'", headers["content-security-policy"]);

        var cookies = await page.Context.CookiesAsync();
        var session = Assert.Single(cookies, c => c.Name == "postback_admin");
        Assert.True(session.HttpOnly);
        Assert.Equal(SameSiteAttribute.Strict, session.SameSite);

        var missing = await page.GotoAsync("/admin/deliveries/987654321");
        Assert.Equal(404, missing!.Status);
        await Expect(page.GetByRole(AriaRole.Alert)).ToHaveTextAsync("There is no delivery 987654321.");

        // The session cookie is not an API credential: /api/v1 takes Bearer keys only.
        var api = await page.Context.APIRequest.GetAsync("/api/v1/export-profiles");
        Assert.Equal(401, api.Status);

        await page.GetByRole(AriaRole.Button, new() { Name = "Log out" }).ClickAsync();
        await Expect(page).ToHaveURLAsync(ui.BaseUrl + "/admin/login");
        await page.GotoAsync("/admin");
        await Expect(page).ToHaveURLAsync(new Regex("/admin/login"));
    }

    [Fact]
    public async Task Forms_need_their_antiforgery_token_and_a_session_ends_when_its_key_is_revoked()
    {
        var (organizationId, key) = await ui.Hub.CreateOrganizationAsync("Revoked organization", 3003);
        var page = await ui.LoginAsync(key);

        // The session cookie alone cannot post a form: the antiforgery token is required.
        var forged = await page.Context.APIRequest.PostAsync("/admin/export-profiles?handler=Create", new()
        {
            Form = page.Context.APIRequest.CreateFormData().Set("Name", "forged").Set("PostbackUrl", "https://example.com/x"),
            MaxRedirects = 0,
        });
        Assert.Equal(400, forged.Status);
        Assert.Equal(0, await ui.Hub.WithDbAsync(db => db.ExportProfiles.CountAsync(p => p.OrganizationId == organizationId)));

        await ui.Hub.WithDbAsync(async db =>
        {
            await db.ApiKeys.Where(k => k.OrganizationId == organizationId).ExecuteUpdateAsync(s => s.SetProperty(k => k.RevokedAt, DateTimeOffset.UtcNow));
            return 0;
        });
        await page.GotoAsync("/admin/deliveries");
        await Expect(page).ToHaveURLAsync(new Regex("/admin/login"));
    }

    [Fact]
    public async Task The_operator_password_logs_in_as_the_first_organization_and_keys_see_only_their_own()
    {
        var marker = "Password org profile " + Guid.NewGuid().ToString("N")[..6];
        await Json.ReadOkAsync(await ui.Api().PostJsonAsync("/api/v1/export-profiles", new
        {
            name = marker, postbackUrl = "https://example.com/in", exportDelayMinutes = 0, mappings = Array.Empty<object>(), routes = Array.Empty<object>(),
        }), System.Net.HttpStatusCode.Created);

        var page = await ui.LoginAsync(AdminBrowser.Password);
        await page.GetByRole(AriaRole.Link, new() { Name = "Export Profiles" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Cell, new() { Name = marker, Exact = true })).ToBeVisibleAsync();

        var other = await ui.LoginAsync(ui.OtherKey);
        await other.GotoAsync("/admin/export-profiles");
        await Expect(other.GetByText(marker)).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task A_postback_url_with_a_question_mark_gets_the_crms_error_next_to_the_field()
    {
        var page = await ui.LoginAsync();
        await page.GotoAsync("/admin/export-profiles");
        await page.GetByLabel("Profile Name").FillAsync("Query string profile");
        await page.GetByLabel("Postback URL").FillAsync("https://postingmydata.com/partials.php?list=1");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create" }).ClickAsync();

        var url = page.GetByLabel("Postback URL");
        await Expect(url).ToHaveAttributeAsync("aria-invalid", "true");
        await Expect(page.Locator("#postbackUrl-error")).ToHaveTextAsync("Invalid Postback URL: cannot contain a question mark");
        // The operator's input is kept, and nothing was stored.
        await Expect(url).ToHaveValueAsync("https://postingmydata.com/partials.php?list=1");
        var stored = await Json.ReadOkAsync(await ui.Api().GetAsync("/api/v1/export-profiles"));
        Assert.DoesNotContain(stored.AsArray(), p => p!["name"]!.GetValue<string>() == "Query string profile");
    }

    [Fact]
    public async Task An_operator_builds_a_profile_through_the_forms_and_follows_its_delivery()
    {
        var api = ui.Api();
        var campaignId = "7" + Random.Shared.Next(10_000, 99_999);
        await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/campaigns", new
        {
            campaignId, name = "Test Lander",
            products = new[] { new { productId = "12" + campaignId, sku = "TRIAL-1", name = "Trial bottle", price = 4.95 } },
        }), System.Net.HttpStatusCode.Created);

        var page = await ui.LoginAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "Export Profiles" }).ClickAsync();

        // Steps 2 to 4: create, then General Settings.
        var name = "Call center partials " + campaignId;
        await page.GetByLabel("Profile Name").FillAsync(name);
        await Expect(page.GetByLabel("Export Type")).ToHaveValueAsync("postback");
        await page.GetByLabel("Postback URL").FillAsync(ui.Receiver.Url("/partials.php"));
        await page.GetByLabel("Export Delay (minutes)").FillAsync("0");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "General Settings" })).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Field Mappings" })).ToBeVisibleAsync();
        var profileUrl = page.Url.Split('#')[0];

        // Step 5: field mappings, from the field picker and as static values.
        async Task AddMapping(string exportName, string? field, string? staticValue = null)
        {
            await page.GetByLabel("Export Name").FillAsync(exportName);
            await page.GetByLabel("Field", new() { Exact = true }).SelectOptionAsync(field ?? "");
            await page.GetByLabel("Static Value").FillAsync(staticValue ?? "");
            await page.GetByRole(AriaRole.Button, new() { Name = "Add mapping" }).ClickAsync();
            await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync($"Added the field mapping {exportName}");
        }
        await AddMapping("last_name", "lastName");
        await AddMapping("first_name", "firstName");
        await AddMapping("list_id", null, "400");
        await AddMapping("email_address", "emailAddress");
        await AddMapping("campaign_number", "campaignId");
        await AddMapping("temp", "city");

        // Reorder (first_name before last_name) and delete.
        await page.GetByRole(AriaRole.Button, new() { Name = "Move first_name up" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Moved the field mapping first_name");
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete temp" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Deleted the field mapping temp");
        await Expect(page.Locator("#template")).ToHaveTextAsync(
            ui.Receiver.Url("/partials.php") + "?first_name=[firstName]&last_name=[lastName]&list_id=400&email_address=[emailAddress]&campaign_number=[campaignId]");

        // A bad mapping is refused next to its field.
        await page.GetByLabel("Export Name").FillAsync("list_id");
        await page.GetByLabel("Static Value").FillAsync("401");
        await page.GetByRole(AriaRole.Button, new() { Name = "Add mapping" }).ClickAsync();
        await Expect(page.Locator("#new-exportName-error")).ToContainTextAsync("export names must be unique");

        // Step 6: routing, partials from the Test Lander campaign.
        await page.GetByRole(AriaRole.Group, new() { Name = "Customer types" }).GetByLabel("Partial", new() { Exact = true }).CheckAsync();
        await page.GetByLabel("Campaigns (none selected: all)").SelectOptionAsync([campaignId]);
        await page.GetByRole(AriaRole.Button, new() { Name = "Add route" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Added the route");
        await Expect(page.GetByRole(AriaRole.Table, new() { Name = "Routes" })).ToContainTextAsync($"Test Lander ({campaignId})");

        // Preview: the sample order in this campaign fires the profile as a partial.
        await Expect(page.GetByTestId("routing")).ToHaveTextAsync("A partial event for this order fires this profile as partial.");
        await Expect(page.GetByLabel("Request preview")).ToContainTextAsync(
            $"GET /partials.php?first_name=Jane&last_name=Doe&list_id=400&email_address=jane%40example.com&campaign_number={campaignId} HTTP/1.1");

        // The live preview follows the form without leaving the page (admin.js fetches it).
        var before = page.Url;
        await page.GetByLabel("Customer type", new() { Exact = true }).SelectOptionAsync("new_sale");
        await Expect(page.GetByTestId("routing")).ToHaveTextAsync("No route matches a new_sale event for this order (customer type, campaign or product).");
        Assert.Equal(before, page.Url);
        await page.GetByLabel("Customer type", new() { Exact = true }).SelectOptionAsync("");
        await Expect(page.GetByTestId("routing")).ToHaveTextAsync("A partial event for this order fires this profile as partial.");

        // Test send shows the receiver's answer.
        ui.Receiver.Respond = r => r.Path == "/partials.php" && r.RawQuery.Contains("first_name=Jane") ? (202, "queued for the call center") : (200, "OK");
        await page.GetByRole(AriaRole.Button, new() { Name = "Test send" }).ClickAsync();
        await Expect(page.GetByTestId("test-status")).ToHaveTextAsync("202");
        await Expect(page.GetByLabel("Receiver response")).ToContainTextAsync("queued for the call center");

        // The profile is what the API sees too.
        var profileId = long.Parse(profileUrl[(profileUrl.LastIndexOf('/') + 1)..]);
        var stored = await Json.ReadOkAsync(await api.GetAsync($"/api/v1/export-profiles/{profileId}"));
        Assert.Equal(["first_name", "last_name", "list_id", "email_address", "campaign_number"],
            stored["mappings"]!.AsArray().Select(m => m!["exportName"]!.GetValue<string>()));
        Assert.Equal(campaignId, stored["routes"]![0]!["campaignIds"]![0]!.GetValue<string>());

        // An event through the API; its delivery and attempt show up in the UI.
        var orderId = Random.Shared.Next(100_000, 999_999);
        var customerId = "cust-" + orderId;
        ui.Receiver.Respond = _ => (200, "thanks " + orderId);
        await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/events", new
        {
            eventId = "ui-" + orderId, type = "partial",
            order = new { orderId, customerId, campaignId, firstName = "Ann", lastName = "Lee", emailAddress = "ann@example.com", dateCreated = "2024-07-31 16:24:58" },
        }), System.Net.HttpStatusCode.Accepted);

        await page.GetByRole(AriaRole.Link, new() { Name = "Deliveries" }).ClickAsync();
        await page.GetByLabel("Profile").SelectOptionAsync(profileId.ToString());
        await page.GetByLabel("Order id").FillAsync(orderId.ToString());
        await page.GetByRole(AriaRole.Button, new() { Name = "Filter" }).ClickAsync();
        var deliveries = page.GetByRole(AriaRole.Table, new() { Name = "Deliveries" });
        await Expect(deliveries.GetByRole(AriaRole.Row)).ToHaveCountAsync(2);
        await deliveries.GetByRole(AriaRole.Link, new() { NameRegex = new Regex("^Delivery \\d+$") }).ClickAsync();

        // The worker sends within moments; reload until the attempt is recorded.
        await WaitForAsync(page, () => page.GetByTestId("delivery-status").TextContentAsync(), "succeeded");
        var attempt = page.GetByRole(AriaRole.Article, new() { Name = "Attempt 1" });
        await Expect(attempt.GetByLabel("Attempt 1 request")).ToContainTextAsync(
            $"GET {ui.Receiver.Url("/partials.php")}?first_name=Ann&last_name=Lee&list_id=400&email_address=ann%40example.com&campaign_number={campaignId}");
        await Expect(attempt.GetByLabel("Attempt 1 response")).ToContainTextAsync("HTTP 200");
        await Expect(attempt.GetByLabel("Attempt 1 response")).ToContainTextAsync("thanks " + orderId);
        var deliveryUrl = page.Url;

        // Retry sends it again: a second attempt.
        await page.GetByRole(AriaRole.Button, new() { Name = "Retry now" }).ClickAsync();
        await WaitForAsync(page, async () => (await page.GetByRole(AriaRole.Article, new() { Name = "Attempt 2" }).CountAsync()).ToString(), "1");

        // The order page lists the export; the customer's history links to exactly what was sent.
        await page.GotoAsync($"/admin/orders/{orderId}");
        await Expect(page.GetByRole(AriaRole.Table, new() { Name = "Events" })).ToContainTextAsync("partial");
        await Expect(page.GetByRole(AriaRole.Table, new() { Name = "Exports" })).ToContainTextAsync(name);
        await page.GetByRole(AriaRole.Link, new() { Name = customerId }).First.ClickAsync();
        await page.GetByRole(AriaRole.Link, new() { NameRegex = new Regex("^View what was sent") }).ClickAsync();
        Assert.Equal(deliveryUrl, page.Url);

        // Replay (issue 12, finding 7): the page says what it would send before it acts. By
        // default a succeeded delivery is not sent again; naming succeeded does, after the
        // operator has seen how many already succeeded.
        await page.GotoAsync($"/admin/deliveries?profileId={profileId}");
        await page.GetByRole(AriaRole.Button, new() { Name = "Replay matching deliveries" }).ClickAsync();
        await Expect(page.GetByTestId("replay-preview")).ToContainTextAsync("This will send 0 deliveries again (0 already succeeded).");
        await page.GotoAsync($"/admin/deliveries?profileId={profileId}&status=succeeded");
        await page.GetByRole(AriaRole.Button, new() { Name = "Replay matching deliveries" }).ClickAsync();
        await Expect(page.GetByTestId("replay-preview")).ToHaveTextAsync("This will send 1 delivery again (1 already succeeded).");
        await page.GetByRole(AriaRole.Button, new() { Name = "Send 1 delivery again" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToHaveTextAsync("Replayed 1 delivery: it is due now.");
        await page.GotoAsync(deliveryUrl);
        await WaitForAsync(page, async () => (await page.GetByRole(AriaRole.Article, new() { Name = "Attempt 3" }).CountAsync()).ToString(), "1");
    }

    [Fact]
    public async Task The_dashboard_and_a_pending_delivery_say_when_its_receiver_is_on_hold()
    {
        // A receiver of its own: its circuit must not hold back the other tests' receiver.
        await using var down = await Receiver.StartAsync();
        down.Respond = _ => (503, "down for maintenance");
        var (_, key) = await ui.Hub.CreateOrganizationAsync("Held organization", Random.Shared.Next(10_000, 99_999));
        using var api = ui.Hub.Api(key);
        await DeliveryScenario.CreateProfileAsync(api, down.Url("/held"), "held " + Guid.NewGuid().ToString("N")[..6]);
        var ids = await DeliveryScenario.PostBatchAsync(api, "held-" + Guid.NewGuid().ToString("N")[..6], Random.Shared.Next(100_000, 999_999), 6);

        var page = await ui.LoginAsync(key);
        await page.GotoAsync("/admin");
        var endpoint = $"http://127.0.0.1:{down.BaseUri.Port}";
        await WaitForAsync(page, () => TextIfShownAsync(page.Locator($"[data-hold='{endpoint}']")),
            text => text is not null && Regex.IsMatch(text, "^receiver on hold (until \\d\\d:\\d\\d:\\d\\d )?after \\d+ failures"));

        await page.GotoAsync($"/admin/deliveries/{ids[0]}");
        await WaitForAsync(page, () => TextIfShownAsync(page.GetByTestId("delivery-hold")),
            text => text is not null && text.StartsWith("receiver on hold", StringComparison.Ordinal));
    }

    private static async Task<string?> TextIfShownAsync(ILocator locator) =>
        await locator.CountAsync() > 0 ? await locator.First.TextContentAsync() : null;

    [Fact]
    public async Task A_konnektive_mapping_json_replaces_the_mappings()
    {
        var page = await ui.LoginAsync();
        await page.GotoAsync("/admin/export-profiles");
        await page.GetByLabel("Profile Name").FillAsync("Imported " + Guid.NewGuid().ToString("N")[..6]);
        await page.GetByLabel("Postback URL").FillAsync("https://example.com/import");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create" }).ClickAsync();

        await page.GetByText("Import a Konnektive mapping JSON").ClickAsync();
        await page.GetByLabel("Konnektive mapping JSON").FillAsync("""{"fname": "[firstName]", "list_id": "400", "header:Host": "evil.example"}""");
        await page.GetByRole(AriaRole.Button, new() { Name = "Import mappings" }).ClickAsync();
        await Expect(page.Locator("#import-error")).ToContainTextAsync("header:Host: the Host header is set by Postback itself and cannot be mapped");

        await page.GetByLabel("Konnektive mapping JSON").FillAsync("""{"fname": "[firstName]", "list_id": "400"}""");
        await page.GetByRole(AriaRole.Button, new() { Name = "Import mappings" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Imported 2 field mappings");
        var table = page.GetByRole(AriaRole.Table, new() { Name = "Field mappings" });
        await Expect(table).ToContainTextAsync("[firstName]");
        await Expect(table).ToContainTextAsync("400");

        // Another operator reorders the mappings meanwhile: a row button drawn for the old list
        // changes nothing rather than the wrong row.
        var id = page.Url.Split('#')[0].Split('/')[^1];
        var api = ui.Api();
        var profile = (await Json.ReadOkAsync(await api.GetAsync($"/api/v1/export-profiles/{id}"))).AsObject();
        var reordered = new System.Text.Json.Nodes.JsonArray(profile["mappings"]![1]!.DeepClone(), profile["mappings"]![0]!.DeepClone());
        await Json.ReadOkAsync(await api.PutJsonAsync($"/api/v1/export-profiles/{id}", new
        {
            name = profile["name"]!.GetValue<string>(), postbackUrl = profile["postbackUrl"]!.GetValue<string>(), exportDelayMinutes = 0,
            mappings = reordered, routes = Array.Empty<object>(),
        }));
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete fname" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("The profile changed since this page was loaded; nothing was changed.");
        var rows = page.GetByRole(AriaRole.Table, new() { Name = "Field mappings" }).GetByRole(AriaRole.Row);
        await Expect(rows).ToHaveCountAsync(3);
        await Expect(rows.Nth(1)).ToContainTextAsync("list_id");
    }

    [Fact]
    public async Task The_dashboard_counts_deliveries_by_status_and_shows_failing_receivers()
    {
        var api = ui.Api(ui.OtherKey);
        var failing = ui.Receiver.Url("/down-" + Guid.NewGuid().ToString("N")[..6]);
        ui.Receiver.Respond = r => r.Path.StartsWith("/down-", StringComparison.Ordinal) ? (503, "maintenance") : (200, "OK");
        async Task<long> Profile(string url) => (await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "Dash " + url, postbackUrl = url, exportDelayMinutes = 0,
            mappings = new[] { new { exportName = "id", field = "orderId" } },
            routes = new[] { new { customerTypes = new[] { "new_sale" } } },
        }), System.Net.HttpStatusCode.Created))["id"]!.GetValue<long>();
        await Profile(ui.Receiver.Url("/ok"));
        await Profile(failing);
        for (var i = 1; i <= 3; i++)
        {
            await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/events", new { eventId = $"dash-{i}", type = "new_sale", order = new { orderId = 900 + i } }),
                System.Net.HttpStatusCode.Accepted);
        }

        var page = await ui.LoginAsync(ui.OtherKey);
        // Three deliveries succeed; three wait for a retry against the failing receiver.
        await WaitForAsync(page, () => page.Locator("[data-status=succeeded]").TextContentAsync(), "3");
        await WaitForAsync(page, () => page.GetByRole(AriaRole.Table).TextContentAsync(), text => text?.Contains(new Uri(failing).Authority) == true);
        await Expect(page.Locator("[data-status=pending]")).ToHaveTextAsync("3");
        await Expect(page.Locator("[data-status=failed]")).ToHaveTextAsync("0");
        await Expect(page.Locator("[data-fact=pending]")).ToHaveTextAsync("3");
        await Expect(page.GetByRole(AriaRole.Table)).ToContainTextAsync("503");
    }
}
