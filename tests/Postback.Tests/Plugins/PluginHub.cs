using Postback.Organizations;
using Postback.Tests.Support;

namespace Postback.Tests.Plugins;

/// One hub per storage for the plugin API tests, with a campaign whose products resolve SKUs
/// and a second organization for isolation tests.
public abstract class PluginHub(StorageKind storage) : IAsyncLifetime
{
    public const string CampaignId = "259";
    public const string PublicBaseUrl = "https://hooks.example.com/";

    public HubFactory Hub { get; private set; } = null!;

    public long OrganizationId { get; private set; }

    public string OtherKey { get; private set; } = "";

    public async Task InitializeAsync()
    {
        Hub = await HubFactory.StartAsync(storage, settings: new Dictionary<string, string?> { ["Postback:PublicBaseUrl"] = PublicBaseUrl });
        (_, OtherKey) = await Hub.CreateOrganizationAsync("Other organization", 3003);
        OrganizationId = await Hub.WithDbAsync(db => Task.FromResult(db.Organizations.OrderBy(o => o.Id).First().Id));
        using var api = Hub.Api();
        var campaign = await api.PostJsonAsync("/api/v1/campaigns", new
        {
            campaignId = CampaignId,
            name = "Test Lander",
            products = new[]
            {
                new { productId = "P-KIT", sku = "KIT-1", name = "Starter kit", price = 49.95m, recurring = false },
                new { productId = "P-REFILL", sku = "REFILL-1", name = "Refill", price = 19.50m, recurring = true },
            },
        });
        Assert.Equal(201, (int)campaign.StatusCode);
    }

    public async Task DisposeAsync() => await Hub.DisposeAsync();
}

public sealed class SqlitePluginHub() : PluginHub(StorageKind.Sqlite);

public sealed class PostgresPluginHub() : PluginHub(StorageKind.Postgres);
