using System.Net.Http.Headers;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Postback.Storage;
using Postback.Tests.Support;

namespace Postback.Tests.Confirmations;

/// The real hub on Kestrel (as HubFactory starts it) whose clock is a FakeTimeProvider: retry
/// and e-mail backoff are moved on by the test, never slept through. The confirmation worker
/// and the e-mail sender run; export deliveries do not. Several hubs can share one data
/// directory, one after the other, to show what survives a restart.
public sealed class ConfirmationHub : WebApplicationFactory<Program>
{
    private readonly Dictionary<string, string?> _settings;

    public ConfirmationHub(FakeTimeProvider time, string connectionString, StorageKind storage, int smtpPort, IReadOnlyDictionary<string, string?>? settings = null)
    {
        Time = time;
        _settings = new()
        {
            ["Postback:BootstrapApiKey"] = HubFactory.ApiKey,
            ["Postback:Outbound:AllowPrivateNetworks"] = "true",
            ["Postback:Outbound:TimeoutSeconds"] = "1",
            ["Postback:Storage:Provider"] = storage == StorageKind.Sqlite ? "sqlite" : "postgres",
            ["ConnectionStrings:Postback"] = connectionString,
            ["Postback:Delivery:Enabled"] = "false",
            ["Postback:Confirmation:PollMilliseconds"] = "50",
            ["Postback:Smtp:Host"] = "127.0.0.1",
            ["Postback:Smtp:Port"] = smtpPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Postback:Smtp:From"] = "Postback Alerts <alerts@postback.test>",
            ["Postback:Smtp:UseTls"] = "false",
            ["Postback:Smtp:PollMilliseconds"] = "50",
            ["Postback:Smtp:TimeoutSeconds"] = "5",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            _settings[key] = value;
        }
        UseKestrel(0);
    }

    public FakeTimeProvider Time { get; }

    public static string SqliteConnectionString(string directory) => $"Data Source={Path.Combine(directory, "postback.db")}";

    public static ConfirmationHub Start(FakeTimeProvider time, string connectionString, StorageKind storage, int smtpPort, IReadOnlyDictionary<string, string?>? settings = null)
    {
        var hub = new ConfirmationHub(time, connectionString, storage, smtpPort, settings);
        hub.StartServer();
        return hub;
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }
        builder.ConfigureTestServices(services => services.AddSingleton<TimeProvider>(Time));
    }

    public HttpClient Api(string key = HubFactory.ApiKey)
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    public async Task<T> WithDbAsync<T>(Func<PostbackDb, Task<T>> work)
    {
        await using var scope = Services.CreateAsyncScope();
        return await work(scope.ServiceProvider.GetRequiredService<PostbackDb>());
    }
}
