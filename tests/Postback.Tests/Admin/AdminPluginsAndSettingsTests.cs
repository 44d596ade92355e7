using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;
using Postback.Organizations;
using Postback.Tests.Support;
using static Microsoft.Playwright.Assertions;
using static Postback.Tests.Admin.PageWait;

namespace Postback.Tests.Admin;

/// Seed 000 (plugins, SKUs) and seed 002 (confirmation settings, confirm and reconfirm), clicked
/// through in a real Chromium against the real hub; the CRM and the receiver are real HTTP.
// One Chromium at a time: the admin classes run one after the other.
[Collection("Admin UI")]
public sealed class AdminPluginsAndSettingsTests(AdminBrowser ui) : IClassFixture<AdminBrowser>
{
    private static readonly string[] Clipboard = ["clipboard-read", "clipboard-write"];

    private static string NewId() => Random.Shared.Next(10_000, 99_999).ToString(CultureInfo.InvariantCulture);

    private static async Task<string> CampaignAsync(HttpClient api, string productId, string sku)
    {
        var campaignId = "8" + NewId();
        await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/campaigns", new
        {
            campaignId, name = "Lander " + campaignId,
            products = new[] { new { productId, sku, name = "Starter kit", price = 49.95 } },
        }), HttpStatusCode.Created);
        return campaignId;
    }

    // A Konnektive postback, as the CRM sends it with seed 000's field mapping.
    private static async Task<JsonNode> SendPostbackAsync(string url, long instanceId, string secret, long orderId, string sku)
    {
        using var crm = new HttpClient();
        var fields = new Dictionary<string, string>
        {
            ["orderId"] = orderId.ToString(CultureInfo.InvariantCulture),
            ["customerType"] = "NEW_SALE",
            ["firstName"] = "Jane",
            ["lastName"] = "Doe",
            ["emailAddress"] = "jane@example.com",
            ["product1_sku"] = sku,
            ["product1_name"] = "Mystery box",
            ["product1_qty"] = "1",
            ["product1_price"] = "19.90",
            ["pluginInstanceId"] = instanceId.ToString(CultureInfo.InvariantCulture),
            ["secret"] = secret,
        };
        return await Json.ReadOkAsync(await crm.PostAsync(url, new FormUrlEncodedContent(fields)));
    }

    [Fact]
    public async Task An_operator_creates_a_plugin_copies_its_webhook_url_and_sees_what_it_received()
    {
        var api = ui.Api();
        var campaignId = await CampaignAsync(api, "P-" + NewId(), "KIT-" + NewId());
        var organizationId = await ui.Hub.WithDbAsync(db => db.Organizations.OrderBy(o => o.Id).Select(o => o.Id).FirstAsync());
        var name = "Konnektive main " + campaignId;

        var page = await ui.LoginAsync(permissions: Clipboard);
        await page.GetByRole(AriaRole.Link, new() { Name = "Plugins", Exact = true }).ClickAsync();

        // Steps 1 to 5: name, secret (left blank: generated), campaign, import, Create.
        await page.GetByLabel("Plugin name").FillAsync(name);
        await Expect(page.GetByLabel("Kind")).ToHaveValueAsync("konnektive");
        await page.GetByLabel("Campaign").SelectOptionAsync(campaignId);
        await page.GetByLabel("Import non-existing SKUs").CheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Create" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync($"Created the plugin {name}");

        // Step 6: the installed plugins table.
        var row = page.GetByRole(AriaRole.Table, new() { Name = "Installed plugins" }).GetByRole(AriaRole.Row).Filter(new() { HasText = name });
        await Expect(row).ToContainTextAsync("konnektive");
        await Expect(row).ToContainTextAsync($"Lander {campaignId} ({campaignId})");
        await Expect(row.GetByRole(AriaRole.Link, new() { Name = $"Edit {name}" })).ToBeVisibleAsync();

        // Steps 7 and 8: open it, copy the webhook URL.
        await row.GetByRole(AriaRole.Link, new() { Name = name, Exact = true }).ClickAsync();
        var instanceId = long.Parse(page.Url.Split('#')[0].Split('/')[^1], CultureInfo.InvariantCulture);
        var shown = (await page.Locator("#webhook-url").TextContentAsync())!;
        await page.GetByRole(AriaRole.Button, new() { Name = "Copy the webhook URL", Exact = true }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Copy the webhook URL", Exact = true })).ToHaveTextAsync("Copied");
        var copied = await page.EvaluateAsync<string>("() => navigator.clipboard.readText()");
        Assert.Equal(shown, copied);
        Assert.Equal($"{ui.BaseUrl}/api/v1/plugins/webhooks/konnektive?organizationId={organizationId}&pluginInstanceId={instanceId}", copied);

        // The secret was generated, and is what the API holds.
        var secret = (await page.Locator("#secret").TextContentAsync())!;
        var stored = await Json.ReadOkAsync(await api.GetAsync($"/api/v1/plugin-instances/{instanceId}"));
        Assert.Equal(stored["secret"]!.GetValue<string>(), secret);
        Assert.StartsWith("pbs_", secret, StringComparison.Ordinal);
        Assert.True(stored["importUnknownSkus"]!.GetValue<bool>());
        Assert.Equal(campaignId, stored["campaignId"]!.GetValue<string>());

        // Konnektive's side, ready to paste: a postback URL without '?', and the field mapping.
        var postbackUrl = (await page.Locator("#postback-url").TextContentAsync())!;
        Assert.DoesNotContain("?", postbackUrl, StringComparison.Ordinal);
        Assert.Equal($"{ui.BaseUrl}/api/v1/plugins/webhooks/konnektive", postbackUrl);
        await page.GetByRole(AriaRole.Button, new() { Name = "Copy the Konnektive postback URL" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Copy the Konnektive postback URL" })).ToHaveTextAsync("Copied");
        Assert.Equal(postbackUrl, await page.EvaluateAsync<string>("() => navigator.clipboard.readText()"));
        await page.GetByRole(AriaRole.Button, new() { Name = "Copy the field mapping JSON" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Copy the field mapping JSON" })).ToHaveTextAsync("Copied");
        var mapping = JsonNode.Parse(await page.EvaluateAsync<string>("() => navigator.clipboard.readText()"))!.AsObject();
        Assert.Equal(organizationId.ToString(CultureInfo.InvariantCulture), mapping["organizationId"]!.GetValue<string>());
        Assert.Equal(instanceId.ToString(CultureInfo.InvariantCulture), mapping["pluginInstanceId"]!.GetValue<string>());
        Assert.Equal(secret, mapping["secret"]!.GetValue<string>());
        Assert.Equal("[product1_sku]", mapping["product1_sku"]!.GetValue<string>());
        Assert.Equal("[dateCreated]", mapping["dateCreated"]!.GetValue<string>());
        Assert.Equal("[customerId]", mapping["customerId"]!.GetValue<string>());

        // The operator leaves fields out; the ids, the secret, orderId and customerType stay.
        await page.GetByText("Choose the order fields in the mapping").ClickAsync();
        await page.GetByLabel("totalAmount (added by Postback)").UncheckAsync();
        await page.GetByLabel("phoneNumber", new() { Exact = true }).UncheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Show the mapping with these fields" }).ClickAsync();
        await Expect(page.GetByLabel("phoneNumber", new() { Exact = true })).Not.ToBeCheckedAsync();
        var chosen = JsonNode.Parse((await page.Locator("#field-mapping").TextContentAsync())!)!.AsObject();
        Assert.False(chosen.ContainsKey("totalAmount"));
        Assert.False(chosen.ContainsKey("phoneNumber"));
        Assert.True(chosen.ContainsKey("customerId"));
        Assert.Equal(secret, chosen["secret"]!.GetValue<string>());
        Assert.Equal("[customerType]", chosen["customerType"]!.GetValue<string>());
        Assert.Equal(mapping.Count - 2, chosen.Count);

        // The CRM posts to the pasted URL; the inbound log shows it, the secret masked.
        var orderId = Random.Shared.Next(100_000, 999_999);
        var accepted = await SendPostbackAsync(postbackUrl, instanceId, secret, orderId, "UI-SKU-" + orderId);
        Assert.Equal("accepted", accepted["outcome"]!.GetValue<string>());
        using (var crm = new HttpClient())
        {
            var refused = await crm.PostAsync(postbackUrl, new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["orderId"] = "1", ["customerType"] = "NEW_SALE", ["pluginInstanceId"] = instanceId.ToString(CultureInfo.InvariantCulture), ["secret"] = "pbs_not_the_right_secret_at_all",
            }));
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }
        await page.ReloadAsync();
        var log = page.GetByRole(AriaRole.Table, new() { Name = "Inbound log" });
        await Expect(log.GetByRole(AriaRole.Row)).ToHaveCountAsync(3);
        var first = log.GetByRole(AriaRole.Row).Nth(1);
        await Expect(first).ToContainTextAsync("refused");
        await Expect(first).ToContainTextAsync("does not match this plugin instance's secret");
        var second = log.GetByRole(AriaRole.Row).Nth(2);
        await Expect(second).ToContainTextAsync("accepted");
        await Expect(second.GetByRole(AriaRole.Link, new() { Name = orderId.ToString(CultureInfo.InvariantCulture) })).ToBeVisibleAsync();
        await Expect(second).ToContainTextAsync("secret=********");
        await Expect(log).Not.ToContainTextAsync(secret);
        await Expect(log).Not.ToContainTextAsync("pbs_not_the_right_secret_at_all");

        // Edit: a bad secret is refused next to its field; disabling it shows in the table.
        await page.GetByLabel("New secret key").FillAsync("short");
        await page.GetByRole(AriaRole.Button, new() { Name = "Update" }).ClickAsync();
        await Expect(page.Locator("#secret-error")).ToContainTextAsync("must be 16 to 200 letters");
        await Expect(page.Locator("#secret")).ToHaveTextAsync(secret);
        await page.GetByLabel("New secret key").FillAsync("");
        await page.GetByLabel("Enabled").UncheckAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Update" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync($"Updated the plugin {name}");
        await Expect(page.Locator("#secret")).ToHaveTextAsync(secret);
        Assert.False((await Json.ReadOkAsync(await api.GetAsync($"/api/v1/plugin-instances/{instanceId}")))["enabled"]!.GetValue<bool>());
    }

    [Fact]
    public async Task An_unlinked_sku_is_linked_to_a_product_and_its_order_lines_resolve()
    {
        var api = ui.Api();
        var productId = "P-" + NewId();
        var campaignId = await CampaignAsync(api, productId, "KNOWN-" + NewId());
        var instance = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/plugin-instances", new
        {
            name = "Importing " + campaignId, kind = "konnektive", campaignId, importUnknownSkus = true,
        }), HttpStatusCode.Created);
        var instanceId = instance["id"]!.GetValue<long>();
        var orderId = Random.Shared.Next(100_000, 999_999);
        var sku = "UNKNOWN-" + orderId;
        var accepted = await SendPostbackAsync(ui.BaseUrl + "/api/v1/plugins/webhooks/konnektive", instanceId, instance["secret"]!.GetValue<string>(), orderId, sku);
        Assert.Equal(sku, Assert.Single(accepted["importedSkus"]!.AsArray())!.GetValue<string>());

        var page = await ui.LoginAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "SKUs", Exact = true }).ClickAsync();
        var unlinked = page.GetByRole(AriaRole.Table, new() { Name = "Unlinked SKUs" });
        var row = unlinked.GetByRole(AriaRole.Row).Filter(new() { HasText = sku });
        await Expect(row).ToContainTextAsync("Mystery box");
        await Expect(row.GetByRole(AriaRole.Link, new() { Name = "Importing " + campaignId })).ToBeVisibleAsync();

        // Linking without a product is refused in the row.
        await row.GetByRole(AriaRole.Button, new() { Name = $"Link {sku}" }).ClickAsync();
        await Expect(unlinked.GetByRole(AriaRole.Row).Filter(new() { HasText = sku }).GetByRole(AriaRole.Alert)).ToHaveTextAsync("is required");

        await page.GetByLabel($"Product for {sku}").SelectOptionAsync(productId);
        await page.GetByRole(AriaRole.Button, new() { Name = $"Link {sku}" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToHaveTextAsync($"Linked the SKU {sku} to the product {productId}: 1 order line in 1 order resolved.");
        await Expect(page.Locator("#unlinked")).Not.ToContainTextAsync(sku);
        await Expect(page.GetByRole(AriaRole.Table, new() { Name = "Linked SKUs" })).ToContainTextAsync(sku);

        var order = await Json.ReadOkAsync(await api.GetAsync($"/api/v1/orders/{orderId}"));
        Assert.Equal(productId, order["order"]!["items"]![0]!["productId"]!.GetValue<string>());
        var stillUnlinked = await Json.ReadOkAsync(await api.GetAsync("/api/v1/skus?linked=false"));
        Assert.DoesNotContain(stillUnlinked.AsArray(), s => s!["sku"]!.GetValue<string>() == sku);
    }

    [Fact]
    public async Task The_confirmation_settings_save_and_a_sixth_email_is_refused_next_to_the_field()
    {
        var (_, key) = await ui.Hub.CreateOrganizationAsync("Settings organization", 4004);
        var api = ui.Api(key);
        var page = await ui.LoginAsync(key);
        await page.GetByRole(AriaRole.Link, new() { Name = "Settings", Exact = true }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Order Confirmation Webhook" })).ToBeVisibleAsync();

        var url = ui.Receiver.Url("/settings-confirm");
        await page.GetByLabel("Enable the order confirmation webhook").CheckAsync();
        await page.GetByLabel("Webhook URL").FillAsync(url);
        await page.GetByLabel("Authentication token").FillAsync("token-for-settings-1");
        await page.GetByLabel("Notification e-mails").FillAsync("sales@example.com\nops@example.com");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToHaveTextAsync("Saved the order confirmation webhook settings.");
        await Expect(page.GetByLabel("Webhook URL")).ToHaveValueAsync(url);
        await Expect(page.GetByLabel("Notification e-mails")).ToHaveValueAsync("sales@example.com\nops@example.com");
        var saved = await Json.ReadOkAsync(await api.GetAsync("/api/v1/settings/order-confirmation-webhook"));
        Assert.True(saved["enabled"]!.GetValue<bool>());
        Assert.Equal(url, saved["url"]!.GetValue<string>());
        Assert.Equal("token-for-settings-1", saved["authenticationToken"]!.GetValue<string>());
        Assert.Equal(["sales@example.com", "ops@example.com"], saved["notificationEmails"]!.AsArray().Select(e => e!.GetValue<string>()));

        // A sixth address: the API's error next to the list, the input kept, nothing saved.
        var six = string.Join("\n", Enumerable.Range(1, 6).Select(i => $"team{i}@example.com"));
        await page.GetByLabel("Webhook URL").FillAsync(ui.Receiver.Url("/changed"));
        await page.GetByLabel("Notification e-mails").FillAsync(six);
        await page.GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();
        await Expect(page.Locator("#notificationEmails-error")).ToHaveTextAsync("at most 5 addresses, not 6");
        await Expect(page.GetByLabel("Notification e-mails")).ToHaveAttributeAsync("aria-invalid", "true");
        await Expect(page.GetByLabel("Notification e-mails")).ToHaveValueAsync(six);
        await Expect(page.GetByRole(AriaRole.Status)).ToHaveCountAsync(0);
        Assert.Equal(saved.ToJsonString(), (await Json.ReadOkAsync(await api.GetAsync("/api/v1/settings/order-confirmation-webhook"))).ToJsonString());

        // A '?' in the URL, a token over 50 characters and a bad address: each next to its field.
        await page.GetByLabel("Webhook URL").FillAsync(ui.Receiver.Url("/confirm") + "?company=1");
        await page.GetByLabel("Authentication token").FillAsync(new string('t', 51));
        await page.GetByLabel("Notification e-mails").FillAsync("sales@example.com\nnot-an-address");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();
        await Expect(page.Locator("#url-error")).ToHaveTextAsync("Invalid Postback URL: cannot contain a question mark");
        await Expect(page.Locator("#authenticationToken-error")).ToHaveTextAsync("must be at most 50 characters");
        await Expect(page.Locator("#notificationEmails-error")).ToHaveTextAsync("address 2: 'not-an-address' is not an e-mail address such as sales@example.com");
        Assert.Equal(saved.ToJsonString(), (await Json.ReadOkAsync(await api.GetAsync("/api/v1/settings/order-confirmation-webhook"))).ToJsonString());
    }

    [Fact]
    public async Task An_order_is_confirmed_fails_with_the_receivers_message_and_is_reconfirmed()
    {
        var (_, key) = await ui.Hub.CreateOrganizationAsync("Confirming organization", 5005);
        var api = ui.Api(key);
        var path = "/confirm-" + NewId();
        var answer = """{"status":"0","message":"Out of stock"}""";
        ui.Receiver.Respond = r => r.Path == path ? (200, answer) : (200, "OK");
        const string token = "confirm-token-0123456789";
        await Json.ReadOkAsync(await api.PutJsonAsync("/api/v1/settings/order-confirmation-webhook", new
        {
            enabled = true, url = ui.Receiver.Url(path), authenticationToken = token, notificationEmails = Array.Empty<string>(),
        }));
        var orderId = Random.Shared.Next(100_000, 999_999);
        var customerId = "confirm-cust-" + orderId;
        await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/events", new
        {
            eventId = "confirm-" + orderId, type = "new_sale", order = new { orderId, customerId, firstName = "Ann" },
        }), HttpStatusCode.Accepted);

        var page = await ui.LoginAsync(key);
        await page.GotoAsync($"/admin/orders/{orderId}");
        var section = page.Locator("#confirmation");
        await Expect(section).ToContainTextAsync("Not confirmed yet.");

        await section.GetByRole(AriaRole.Button, new() { Name = "Confirm", Exact = true }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Confirming the order");
        await WaitForAsync(page, () => page.GetByTestId("confirmation-status").TextContentAsync(), "failed");
        await Expect(page.GetByTestId("confirmation-message")).ToHaveTextAsync("Out of stock");
        await Expect(page.GetByTestId("confirmation-error")).ToHaveTextAsync("the receiver answered status 0");

        // What was sent and answered, the token masked.
        await page.GetByRole(AriaRole.Link, new() { Name = "Requests and responses of the confirmation" }).ClickAsync();
        var request = page.GetByLabel("Send 1 attempt 1 request");
        await Expect(request).ToContainTextAsync($"POST {ui.Receiver.Url(path)}");
        await Expect(request).ToContainTextAsync("authenticationToken: ********");
        await Expect(request).ToContainTextAsync($"\"orderId\":{orderId}");
        await Expect(page.Locator("main")).Not.ToContainTextAsync(token);
        await Expect(page.GetByLabel("Send 1 attempt 1 response")).ToContainTextAsync("Out of stock");
        Assert.Equal(token, ui.Receiver.Received.Last(r => r.Path == path).Header("authenticationToken"));

        // The receiver is fixed; reconfirm (after the operator confirms the dialog).
        answer = """{"status":1,"message":"Confirmed"}""";
        await page.GotoAsync($"/admin/orders/{orderId}");
        page.Dialog += (_, dialog) => dialog.AcceptAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Reconfirm" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Reconfirming the order");
        await WaitForAsync(page, () => page.GetByTestId("confirmation-status").TextContentAsync(), "confirmed");
        await Expect(page.GetByTestId("confirmation-message")).ToHaveTextAsync("Confirmed");
        await Expect(page.GetByTestId("confirmation-error")).ToHaveCountAsync(0);
        var confirmation = await Json.ReadOkAsync(await api.GetAsync($"/api/v1/orders/{orderId}/confirmation"));
        Assert.Equal("confirmed", confirmation["confirmation"]!["status"]!.GetValue<string>());

        // The customer's history lists both outcomes, each linking to the requests.
        await page.GotoAsync($"/admin/customers/{customerId}");
        var history = page.GetByRole(AriaRole.Table, new() { Name = "Customer history" });
        await Expect(history).ToContainTextAsync("Order confirmation failed");
        await Expect(history).ToContainTextAsync("Order confirmed");
        await Expect(history.GetByRole(AriaRole.Link, new() { NameRegex = new Regex("^View the confirmation's requests") })).ToHaveCountAsync(2);
        await history.GetByRole(AriaRole.Link, new() { NameRegex = new Regex("^View the confirmation's requests") }).First.ClickAsync();
        await Expect(page.GetByLabel("Send 2 attempt 1 response")).ToContainTextAsync("Confirmed");
    }
}
