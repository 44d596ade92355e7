using Postback.Tests.Support;

namespace Postback.Tests.Hardening;

/// Issue 12, finding 6: the database holds customers' personal data; what the hub creates is
/// readable by its owner only.
public sealed class DataFolderPermissionTests
{
    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task The_data_folder_is_0700_and_the_database_wal_and_shm_are_0600_when_the_hub_creates_them()
    {
        var root = DeliveryScenario.TempDirectory("perm");
        var folder = Path.Combine(root, "data");
        var database = Path.Combine(folder, "postback.db");
        try
        {
            await using (var hub = await HubFactory.StartAsync(settings: new Dictionary<string, string?> { ["ConnectionStrings:Postback"] = $"Data Source={database}" }))
            {
                using var api = hub.Api();
                Assert.Equal(202, (int)(await api.PostJsonAsync("/api/v1/events", new { type = "new_sale", order = new { orderId = 1 } })).StatusCode);

                const UnixFileMode ownerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                Assert.Equal(ownerOnly | UnixFileMode.UserExecute, File.GetUnixFileMode(folder));
                foreach (var file in new[] { database, database + "-wal", database + "-shm" })
                {
                    Assert.True(File.Exists(file), $"{file} exists while the hub runs");
                    Assert.Equal(ownerOnly, File.GetUnixFileMode(file));
                }
            }
        }
        finally
        {
            DeliveryScenario.DeleteDirectory(root);
        }
    }
}
