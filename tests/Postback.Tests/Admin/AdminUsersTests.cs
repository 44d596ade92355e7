using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;
using Postback.ExportProfiles;
using Postback.Tests.Support;
using static Microsoft.Playwright.Assertions;

namespace Postback.Tests.Admin;

/// Operator accounts in the browser: the first admin logs in with e-mail and password,
/// invites a user, who replaces the temporary password; disabling and logging out end sessions.
[Collection("Admin UI")]
public sealed class AdminUsersTests(AdminBrowser ui) : IClassFixture<AdminBrowser>
{
    [Fact]
    public async Task An_admin_invites_a_viewer_who_sets_a_password_and_is_refused_changes_until_disabled()
    {
        var admin = await ui.LoginUserAsync(AdminBrowser.AdminEmail, AdminBrowser.AdminPassword);
        await Expect(admin.Locator("header .who")).ToContainTextAsync(AdminBrowser.AdminEmail + " (admin)");
        await admin.GetByRole(AriaRole.Link, new() { Name = "Team" }).ClickAsync();
        await Expect(admin).ToHaveURLAsync(new Regex("/admin/team/users$"));

        var email = $"viewer.{Guid.NewGuid():N}"[..16] + "@example.test";
        await admin.GetByLabel("E-mail").FillAsync(email);
        await admin.GetByLabel("Role", new() { Exact = true }).SelectOptionAsync("viewer");
        await admin.GetByRole(AriaRole.Button, new() { Name = "Invite" }).ClickAsync();
        var temporary = (await admin.Locator("#temporary-password").TextContentAsync())!.Trim();

        // The temporary password leads straight to choosing one's own.
        var viewer = await ui.LoginUserAsync(email, temporary, "/admin/account/password");
        await viewer.GotoAsync("/admin/deliveries");
        await Expect(viewer).ToHaveURLAsync(new Regex("/admin/account/password$"));
        await viewer.GetByLabel("Current password").FillAsync(temporary);
        await viewer.GetByLabel("New password").FillAsync("short");
        await viewer.GetByRole(AriaRole.Button, new() { Name = "Change password" }).ClickAsync();
        await Expect(viewer.Locator("#newPassword-error")).ToContainTextAsync("at least 12 characters");
        await viewer.GetByLabel("Current password").FillAsync(temporary);
        await viewer.GetByLabel("New password").FillAsync("the viewer's own password");
        await viewer.GetByRole(AriaRole.Button, new() { Name = "Change password" }).ClickAsync();
        await Expect(viewer).ToHaveURLAsync(ui.BaseUrl + "/admin");
        await Expect(viewer.Locator("header .who")).ToContainTextAsync(email + " (viewer)");

        // A viewer: no Create button, and the form's POST is refused.
        await viewer.GotoAsync("/admin/export-profiles");
        await Expect(viewer.GetByRole(AriaRole.Button, new() { Name = "Create" })).ToHaveCountAsync(0);
        var token = await viewer.Locator("form.logout input[name=__RequestVerificationToken]").GetAttributeAsync("value");
        var refused = await viewer.Context.APIRequest.PostAsync("/admin/export-profiles?handler=Create", new()
        {
            Form = viewer.Context.APIRequest.CreateFormData().Set("__RequestVerificationToken", token!).Set("Name", "by a viewer").Set("PostbackUrl", "https://example.com/v"),
            MaxRedirects = 0,
        });
        Assert.Equal(403, refused.Status);
        Assert.Equal(0, await ui.Hub.WithDbAsync(db => db.ExportProfiles.CountAsync(p => p.Name == "by a viewer")));

        // Disabled: the viewer's session ends at its next request.
        await admin.GotoAsync("/admin/team/users");
        await admin.GetByRole(AriaRole.Button, new() { Name = "Disable " + email }).ClickAsync();
        await Expect(admin.GetByRole(AriaRole.Status)).ToContainTextAsync("Disabled the account");
        await viewer.GotoAsync("/admin/deliveries");
        await Expect(viewer).ToHaveURLAsync(new Regex("/admin/login"));
        await viewer.GetByLabel("E-mail").FillAsync(email);
        await viewer.GetByLabel("API key or password").FillAsync("the viewer's own password");
        await viewer.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await Expect(viewer.Locator("#secret-error")).ToHaveTextAsync("That e-mail and password do not match an enabled account.");
    }

    [Fact]
    public async Task Logging_out_ends_the_session_on_the_server_so_a_copied_cookie_stops_working()
    {
        var page = await ui.LoginUserAsync(AdminBrowser.AdminEmail, AdminBrowser.AdminPassword);
        var cookies = await page.Context.CookiesAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Log out" }).ClickAsync();
        await Expect(page).ToHaveURLAsync(ui.BaseUrl + "/admin/login");

        var replay = await ui.NewPageAsync();
        await replay.Context.AddCookiesAsync(cookies.Select(c => new Cookie { Name = c.Name, Value = c.Value, Domain = c.Domain, Path = c.Path }));
        await replay.GotoAsync("/admin/deliveries");
        await Expect(replay).ToHaveURLAsync(new Regex("/admin/login"));
    }

    [Fact]
    public async Task Logins_to_one_account_are_throttled_whatever_the_address()
    {
        var email = "throttled@example.test";
        await Json.ReadOkAsync(await ui.Api().PostJsonAsync("/api/v1/users", new { email, role = "viewer", password = "the right password" }), System.Net.HttpStatusCode.Created);
        var throttle = ui.Hub.Services.GetService(typeof(Postback.Admin.LoginThrottle)) as Postback.Admin.LoginThrottle;
        for (var i = 0; i < Postback.Admin.LoginThrottle.MaxFailures; i++)
        {
            throttle!.Failed(Postback.Admin.LoginThrottle.AccountKey(email));
        }
        var page = await ui.NewPageAsync();
        await page.GotoAsync("/admin/login");
        await page.GetByLabel("E-mail").FillAsync(email);
        await page.GetByLabel("API key or password").FillAsync("the right password");
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await Expect(page.Locator("#secret-error")).ToHaveTextAsync("Too many failed attempts; try again in a few minutes.");
    }
}
