using System.Net.Http.Headers;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Postback.Tests.Support;

namespace Postback.Tests.Admin;

/// One hub (dispatching, with an operator password), one loopback receiver and one headless
/// Chromium for a whole test class. Chromium is Debian's (/usr/bin/chromium, or
/// POSTBACK_TEST_CHROMIUM): Playwright never downloads a browser here.
public class AdminBrowser : IAsyncLifetime
{
    public const string Password = "operator-password-for-tests";
    public const string AdminEmail = "first.admin@example.test";
    public const string AdminPassword = "first-admin-password";

    private IPlaywright? _playwright;

    public HubFactory Hub { get; private set; } = null!;
    public Receiver Receiver { get; private set; } = null!;
    public IBrowser Browser { get; private set; } = null!;
    public string BaseUrl { get; private set; } = "";
    public string OtherKey { get; private set; } = "";

    protected virtual StorageKind Storage => StorageKind.Sqlite;

    public static string ChromiumPath =>
        Environment.GetEnvironmentVariable("POSTBACK_TEST_CHROMIUM") is { Length: > 0 } path ? path : "/usr/bin/chromium";

    public async Task InitializeAsync()
    {
        // A missing browser is a failure, never a skip: test.sh installs it.
        if (!File.Exists(ChromiumPath))
        {
            throw new InvalidOperationException(
                $"Chromium not found at {ChromiumPath}: run ./test.sh (it installs the chromium package) or set POSTBACK_TEST_CHROMIUM.");
        }
        Receiver = await Receiver.StartAsync();
        Hub = await HubFactory.StartAsync(Storage, dispatch: true, settings: new Dictionary<string, string?>
        {
            ["Postback:Admin:Password"] = Password,
            ["Postback:FileExports:FolderRoot"] = Environment.GetEnvironmentVariable("POSTBACK_TEST_FOLDER_ROOT"),
            ["Postback:FileExports:PollSeconds"] = "1",
            ["Postback:BootstrapAdmin:Email"] = AdminEmail,
            ["Postback:BootstrapAdmin:Password"] = AdminPassword,
        });
        (_, OtherKey) = await Hub.CreateOrganizationAsync("Other organization", 2002);
        BaseUrl = Hub.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses
            .First(a => a.StartsWith("http://127.0.0.1", StringComparison.Ordinal)).TrimEnd('/');
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        });
    }

    /// A fresh browser context (its own cookies) with a page, logged in with `secret`.
    /// `permissions` are granted to the context, e.g. clipboard-read and clipboard-write.
    public async Task<IPage> LoginAsync(string secret = HubFactory.ApiKey, IEnumerable<string>? permissions = null)
    {
        var page = await NewPageAsync(permissions);
        await page.GotoAsync(BaseUrl + "/admin/login");
        await page.GetByLabel("API key or password").FillAsync(secret);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await page.WaitForURLAsync(BaseUrl + "/admin");
        return page;
    }

    /// A fresh browser context logged in with an operator account's e-mail and password.
    public async Task<IPage> LoginUserAsync(string email, string password, string expectUrl = "/admin")
    {
        var page = await NewPageAsync();
        await page.GotoAsync(BaseUrl + "/admin/login");
        await page.GetByLabel("E-mail").FillAsync(email);
        await page.GetByLabel("API key or password").FillAsync(password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Log in" }).ClickAsync();
        await page.WaitForURLAsync(BaseUrl + expectUrl);
        return page;
    }

    public async Task<IPage> NewPageAsync(IEnumerable<string>? permissions = null)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = BaseUrl, Permissions = permissions });
        // Bounds on waiting, not speed targets: on a loaded 2-core CI machine a page can take
        // several seconds, and a wait that gives up early only makes the suite flaky.
        context.SetDefaultTimeout(45_000);
        Assertions.SetDefaultExpectTimeout(20_000);
        return await context.NewPageAsync();
    }

    public HttpClient Api(string key = HubFactory.ApiKey)
    {
        var client = Hub.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }
        GC.SuppressFinalize(this);
        _playwright?.Dispose();
        if (Hub is not null)
        {
            await Hub.DisposeAsync();
        }
        if (Receiver is not null)
        {
            await Receiver.DisposeAsync();
        }
    }
}

/// Waiting for what a background worker does, on server-rendered pages.
public static class PageWait
{
    public static Task WaitForAsync(IPage page, Func<Task<string?>> read, string expected) =>
        WaitForAsync(page, read, text => text?.Trim() == expected);

    /// Reloads until the server-rendered page shows what the background worker has done.
    public static async Task WaitForAsync(IPage page, Func<Task<string?>> read, Func<string?, bool> done)
    {
        string? last = null;
        var reload = false;
        await DeliveryScenario.WaitUntilAsync(async () =>
        {
            if (reload)
            {
                await page.ReloadAsync();
            }
            reload = true;
            return done(last = await read());
        }, TimeSpan.FromSeconds(30), () => $"the page never showed what was expected; last seen: {last}");
    }
}

/// The same, over PostgreSQL: the pages' queries (grouping, paging, joins) on the other store.
public sealed class AdminBrowserOnPostgres : AdminBrowser
{
    protected override StorageKind Storage => StorageKind.Postgres;
}
