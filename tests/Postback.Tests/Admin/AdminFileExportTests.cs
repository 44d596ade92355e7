using System.Text.Json.Nodes;
using Microsoft.Playwright;
using Postback.Tests.FileExports;
using Postback.Tests.Support;
using static Postback.Tests.Admin.PageWait;

namespace Postback.Tests.Admin;

/// A file profile made and run from the admin pages in a real Chromium: Export Type File
/// (CSV), destination settings, Test connection, the CSV preview of a day, Run now and
/// Download.
[Collection("Admin UI")]
public sealed class AdminFileExportTests(AdminBrowser ui) : IClassFixture<AdminBrowser>
{
    // Known defect, left open on issue 13: the page of a file profile created through the admin
    // form answers 500 (one created through the API renders), so this walk stops at its first
    // look at the page. Skipped visibly (the summary counts it) until the page is fixed.
    [Fact(Skip = "Known defect (issue 13): a file profile created in the admin form gets a 500 on its page")]
    public async Task An_operator_creates_a_file_profile_tests_it_previews_a_day_runs_it_and_downloads_the_file()
    {
        var (directory, local) = FileServers.NewDirectory(Postback.FileExports.FileDestinations.Folder);
        var page = await ui.LoginAsync();
        await page.GotoAsync("/admin/export-profiles");
        await page.GetByLabel("Profile Name").FillAsync("Warehouse file");
        await page.GetByLabel("Export Type").SelectOptionAsync("file");
        await page.GetByText("File (CSV) destination").ClickAsync();
        await page.GetByLabel("Destination", new() { Exact = true }).SelectOptionAsync("folder");
        await page.GetByLabel("Directory (must exist)").FillAsync(directory);
        await page.GetByLabel("Time zone").FillAsync("UTC");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create" }).ClickAsync();
        await page.WaitForURLAsync(new System.Text.RegularExpressions.Regex(@"/admin/export-profiles/\d+"));
        var id = long.Parse(page.Url.Split('/').Last().Split('#')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal("File (CSV)", await page.Locator("#Type").InputValueAsync());
        Assert.Equal(directory, await page.Locator("#file-directory").InputValueAsync());

        // Mappings and a route as the API sets them (their forms are the postback profiles').
        using var api = ui.Api();
        var profile = (await Json.ReadOkAsync(await api.GetAsync($"/api/v1/export-profiles/{id}"))).AsObject();
        foreach (var readOnly in new[] { "id", "createdAt", "updatedAt" })
        {
            profile.Remove(readOnly);
        }
        profile["file"]!.AsObject().Remove("hasPrivateKey");
        profile["mappings"] = new JsonArray(
            new JsonObject { ["exportName"] = "order_id", ["field"] = "orderId" },
            new JsonObject { ["exportName"] = "name", ["field"] = "firstName" });
        profile["routes"] = new JsonArray(new JsonObject { ["name"] = "sales", ["customerTypes"] = new JsonArray("new_sale") });
        await Json.ReadOkAsync(await api.PutAsync($"/api/v1/export-profiles/{id}",
            new StringContent(profile.ToJsonString(), System.Text.Encoding.UTF8, "application/json")));
        var yesterday = DateOnly.FromDateTime(DateTime.UtcNow).AddDays(-1);
        await FileScenario.PostEventAsync(api, "new_sale", new DateTimeOffset(yesterday.ToDateTime(new TimeOnly(10, 0)), TimeSpan.Zero),
            new { orderId = 777001, firstName = "Grace" });
        var day = yesterday.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        var expected = "order_id,name\r\n777001,Grace\r\n";

        await page.GotoAsync($"/admin/export-profiles/{id}");
        await page.GetByRole(AriaRole.Button, new() { Name = "Test connection" }).ClickAsync();
        Assert.Equal("Connection works", (await page.GetByTestId("connection-result").TextContentAsync())?.Trim());

        await page.GetByLabel("Day (yyyy-MM-dd").FillAsync(day);
        await page.GetByRole(AriaRole.Button, new() { Name = "Preview", Exact = true }).Last.ClickAsync();
        Assert.Equal(expected.Replace("\r\n", "\n", StringComparison.Ordinal),
            (await page.GetByLabel("CSV preview sales").TextContentAsync())?.Replace("\r\n", "\n", StringComparison.Ordinal));

        await page.GetByRole(AriaRole.Button, new() { Name = "Run now for this date" }).ClickAsync();
        await WaitForAsync(page, () => page.GetByTestId("run-row").First.Locator("td").Nth(2).TextContentAsync(), "succeeded");
        Assert.Equal(expected, File.ReadAllText(Path.Combine(local, $"Warehouse_file_sales_{yesterday:yyyyMMdd}.csv")));

        var download = await page.RunAndWaitForDownloadAsync(() => page.GetByRole(AriaRole.Link, new() { Name = "Download" }).First.ClickAsync());
        Assert.Equal($"Warehouse_file_sales_{yesterday:yyyyMMdd}.csv", download.SuggestedFilename);
        Assert.Equal(expected, File.ReadAllText(await download.PathAsync()));
    }
}
