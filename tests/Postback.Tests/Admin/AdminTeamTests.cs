using System.Net;
using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;
using Postback.ExportProfiles;
using Postback.Organizations;
using Postback.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace Postback.Tests.Admin;

/// Roles in the admin UI: what a role may not do is neither offered nor accepted.
[Collection("Admin UI")]
public sealed class AdminTeamTests(AdminBrowser ui) : IClassFixture<AdminBrowser>
{
    private async Task<string> KeyAsync(string role)
    {
        var created = await Json.ReadOkAsync(await ui.Api().PostJsonAsync("/api/v1/api-keys", new { name = $"{role} {Guid.NewGuid():N}"[..20], role }), HttpStatusCode.Created);
        return created["key"]!.GetValue<string>();
    }

    /// Posts a form the way the page would, with the session's antiforgery token (taken from
    /// the log-out form every role has), so only the role check can refuse it.
    private static async Task<IAPIResponse> PostAsForm(IPage page, string url, Dictionary<string, string> fields)
    {
        var token = await page.Locator("form.logout input[name=__RequestVerificationToken]").GetAttributeAsync("value");
        var form = page.Context.APIRequest.CreateFormData().Set("__RequestVerificationToken", token!);
        foreach (var (name, value) in fields)
        {
            form.Set(name, value);
        }
        return await page.Context.APIRequest.PostAsync(url, new() { Form = form, MaxRedirects = 0 });
    }

    [Fact]
    public async Task A_viewer_sees_no_buttons_and_its_posts_are_refused()
    {
        var page = await ui.LoginAsync(await KeyAsync("viewer"));
        await page.GotoAsync("/admin/export-profiles");
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Export Profiles", Exact = true })).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Create" })).ToHaveCountAsync(0);
        await Expect(page.GetByRole(AriaRole.Link, new() { Name = "Team" })).ToHaveCountAsync(0);
        // Logging out stays possible.
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Log out" })).ToBeVisibleAsync();

        var name = "viewer-forged " + Guid.NewGuid().ToString("N")[..6];
        var refused = await PostAsForm(page, "/admin/export-profiles?handler=Create", new() { ["Name"] = name, ["PostbackUrl"] = "https://example.com/x" });
        Assert.Equal(403, refused.Status);
        Assert.Contains("may look but not change anything", await refused.TextAsync());
        Assert.Equal(0, await ui.Hub.WithDbAsync(db => db.ExportProfiles.CountAsync(p => p.Name == name)));

        await page.GotoAsync("/admin/settings");
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Save" })).ToHaveCountAsync(0);
        await Expect(page.GetByLabel("Webhook URL")).ToBeDisabledAsync();
    }

    [Fact]
    public async Task An_operator_changes_profiles_but_not_keys()
    {
        var page = await ui.LoginAsync(await KeyAsync("operator"));
        await page.GotoAsync("/admin/export-profiles");
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Create" })).ToBeVisibleAsync();
        await Expect(page.GetByRole(AriaRole.Link, new() { Name = "Team" })).ToHaveCountAsync(0);

        var keysPage = await page.GotoAsync("/admin/team/keys");
        Assert.Equal(403, keysPage!.Status);
        await Expect(page.GetByRole(AriaRole.Alert)).ToHaveTextAsync("Only admins may open this page; you are signed in as an operator.");

        var before = await ui.Hub.WithDbAsync(db => db.ApiKeys.CountAsync());
        var refused = await PostAsForm(page, "/admin/team/keys?handler=Create", new() { ["Name"] = "sneaky", ["Role"] = "admin" });
        Assert.Equal(403, refused.Status);
        Assert.Equal(before, await ui.Hub.WithDbAsync(db => db.ApiKeys.CountAsync()));
    }

    [Fact]
    public async Task An_admin_creates_a_key_a_client_uses_it_and_revoking_it_ends_it()
    {
        var page = await ui.LoginAsync(AdminBrowser.Password);
        await page.GetByRole(AriaRole.Link, new() { Name = "Team" }).ClickAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "API keys" }).ClickAsync();
        await Expect(page).ToHaveURLAsync(new Regex("/admin/team/keys$"));
        var name = "ERP sync " + Guid.NewGuid().ToString("N")[..6];
        await page.GetByLabel("Key name").FillAsync(name);
        await page.GetByLabel("Role").SelectOptionAsync("viewer");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create key" }).ClickAsync();
        var key = (await page.Locator("#new-key").TextContentAsync())!.Trim();
        Assert.StartsWith("pb_", key);

        // Used as curl would: a plain HTTP client with the bearer key.
        using var client = ui.Api(key);
        await Json.ReadOkAsync(await client.GetAsync("/api/v1/export-profiles"));
        Assert.Equal(HttpStatusCode.Forbidden, (await client.PostJsonAsync("/api/v1/campaigns", new { campaignId = "1", name = "x" })).StatusCode);

        // Shown once: reloading the list shows only its prefix.
        await page.GotoAsync("/admin/team/keys");
        var row = page.GetByRole(AriaRole.Row).Filter(new() { HasText = name });
        await Expect(row).ToContainTextAsync("viewer");
        await Expect(page.GetByText(key)).ToHaveCountAsync(0);

        await row.GetByRole(AriaRole.Button, new() { Name = "Revoke " + name }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Status)).ToContainTextAsync("Revoked the key");
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/v1/export-profiles")).StatusCode);

        // Both changes are in the audit log, by the signed-in admin, with the key's name and no key material.
        await page.GetByRole(AriaRole.Link, new() { Name = "Audit log" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Audit log" })).ToBeVisibleAsync();
        var created = page.GetByRole(AriaRole.Row).Filter(new() { HasText = name });
        await Expect(created).ToHaveCountAsync(1);
        await Expect(created).ToContainTextAsync("create");
        await Expect(created).ToContainTextAsync("api-key");
        await Expect(page.GetByRole(AriaRole.Row).Filter(new() { HasText = "revoke" }).First).ToContainTextAsync("api-key");
        await Expect(page.GetByText(key)).ToHaveCountAsync(0);
    }
}
