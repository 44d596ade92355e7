using System.Net.Http.Headers;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Postback.Organizations;
using Postback.Storage;
using Postback.Testing;

namespace Postback.Tests.Support;

public enum StorageKind
{
    Sqlite,
    Postgres,
}

/// The real hub (Program) in this process, on real Kestrel on 127.0.0.1, over a database of its
/// own: a fresh SQLite file, or a fresh PostgreSQL database on the test server. Its settings
/// start from Postback.Testing's HubSettings, as a hub process's do (HubProcess).
public class HubFactory : WebApplicationFactory<Program>
{
    public const string ApiKey = HubSettings.ApiKey;

    private readonly string _dataDirectory = Path.Combine(Path.GetTempPath(), "postback-tests", Guid.NewGuid().ToString("N"));
    private readonly Dictionary<string, string?> _settings;
    private readonly TimeProvider? _time;

    /// <param name="connectionString">The database: required for PostgreSQL; for SQLite, a file
    /// of the hub's own when null.</param>
    /// <param name="dispatch">Whether the delivery worker runs. Off for tests of the API alone, whose
    /// profiles may point at hosts that are not on this machine.</param>
    public HubFactory(
        StorageKind storage = StorageKind.Sqlite, string? connectionString = null, bool allowPrivateNetworks = true,
        bool dispatch = false, IReadOnlyDictionary<string, string?>? settings = null, TimeProvider? time = null)
    {
        Storage = storage;
        _time = time;
        Directory.CreateDirectory(_dataDirectory);
        _settings = HubSettings.With(
            HubSettings.Base(_dataDirectory),
            HubSettings.Storage(storage == StorageKind.Postgres, connectionString, _dataDirectory),
            new Dictionary<string, string?>
            {
                ["Postback:Outbound:AllowPrivateNetworks"] = allowPrivateNetworks ? "true" : "false",
                ["Postback:Delivery:Enabled"] = dispatch ? "true" : "false",
            },
            settings);
        UseKestrel(0);
    }

    public StorageKind Storage { get; }

    public static async Task<HubFactory> StartAsync(
        StorageKind storage = StorageKind.Sqlite, bool allowPrivateNetworks = true, bool dispatch = false,
        IReadOnlyDictionary<string, string?>? settings = null, TimeProvider? time = null)
    {
        var connectionString = storage == StorageKind.Postgres ? await PostgresServer.CreateDatabaseAsync("pb_hub") : null;
        var factory = new HubFactory(storage, connectionString, allowPrivateNetworks, dispatch, settings, time);
        factory.StartServer();
        return factory;
    }

    protected sealed override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }
        if (_time is not null)
        {
            builder.ConfigureTestServices(services => services.AddSingleton(_time));
        }
    }

    public HttpClient Api(string? key = ApiKey)
    {
        var client = CreateClient();
        if (key is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
        return client;
    }

    /// A second tenant with a key of its own, made the way the bootstrap makes the first.
    public async Task<(long OrganizationId, string Key)> CreateOrganizationAsync(string name, long companyId, string role = "admin")
    {
        await using var scope = Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var organization = new Organization { Name = name, CompanyId = companyId, CreatedAt = DateTimeOffset.UtcNow };
        db.Organizations.Add(organization);
        await db.SaveChangesAsync();
        var key = ApiKeys.Generate();
        db.ApiKeys.Add(new ApiKey { OrganizationId = organization.Id, Name = "test", KeyHash = ApiKeys.Hash(key), Prefix = ApiKeys.DisplayPrefix(key), Role = role, CreatedAt = DateTimeOffset.UtcNow });
        await db.SaveChangesAsync();
        return (organization.Id, key);
    }

    public async Task<T> WithDbAsync<T>(Func<PostbackDb, Task<T>> work)
    {
        await using var scope = Services.CreateAsyncScope();
        return await work(scope.ServiceProvider.GetRequiredService<PostbackDb>());
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        try
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
