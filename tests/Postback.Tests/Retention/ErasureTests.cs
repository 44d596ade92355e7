using System.Globalization;
using System.Text;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Postback.Tests.Support;
using static Postback.Tests.Support.Json;

namespace Postback.Tests.Retention;

/// DELETE /api/v1/customers/{customerId} on both databases: everything of the customer is
/// gone when looked for through the API, nothing of anyone else's is, and on SQLite the
/// erased values are not left in the file.
public abstract class ErasureTests(StorageKind storage) : RetentionScenario(storage)
{
    private const string Secret = "erasure-plugin-secret-1";

    [Fact]
    public async Task Erasing_a_customer_leaves_nothing_of_them_and_everything_of_others()
    {
        await using var receiver = await ReceiverAsync();
        await using var hub = await HubFactory.StartAsync(Storage, dispatch: true);
        using var api = hub.Api();
        await CreateProfilesAsync(api, receiver);
        var (_, otherKey) = await hub.CreateOrganizationAsync("Other organization", 5005);
        using var other = hub.Api(otherKey);

        var first = NextOrderId();
        var customer = $"erase-{first}";
        var marker = $"erase-me-{Guid.NewGuid():N}@example.com";
        var sent = new List<long>
        {
            DeliveryOf(await PostEventAsync(api, "new_sale", first, customer, marker)),
            DeliveryOf(await PostEventAsync(api, "new_sale", first + 1, customer, marker)),
        };
        var pending = DeliveryOf(await PostEventAsync(api, "partial", first + 2, customer, marker));
        var keep = DeliveryOf(await PostEventAsync(api, "new_sale", first + 3, "someone-else"));
        // The same customer id in another organization is another customer.
        await ReadOkAsync(await other.PostJsonAsync("/api/v1/events", new
        {
            eventId = "other-1", type = "new_sale", order = new { orderId = first, customerId = customer, emailAddress = "other@example.com" },
        }), System.Net.HttpStatusCode.Accepted);

        // An order of theirs from the CRM, and a refused postback naming them.
        var instance = await CreatePluginInstanceAsync(api);
        var postback = PostbackFields(instance, Secret, first + 4, customer, marker);
        await ReadOkAsync(await PostFormAsync(hub, postback));
        var refused = PostbackFields(instance, "wrong-secret-value", first + 5, customer, marker);
        Assert.Equal(401, (int)(await PostFormAsync(hub, refused)).StatusCode);
        var fromCrm = Assert.Single((await ReadOkAsync(await api.GetAsync($"/api/v1/deliveries?orderId={first + 4}")))["items"]!.AsArray())!["id"]!.GetValue<long>();
        sent.Add(fromCrm);

        await WaitForStatusAsync(api, [.. sent, keep], "succeeded");
        await ConfirmAsync(api, receiver, first);
        Assert.Equal(3, (await HistoryAsync(api, customer)).Count(l => l!["kind"]!.GetValue<string>() == "export"));

        var erased = await ReadOkAsync(await api.DeleteAsync($"/api/v1/customers/{customer}"));
        Assert.Equal(customer, erased["customerId"]!.GetValue<string>());
        Assert.Equal(1, erased["cancelledDeliveries"]!.GetValue<int>());
        Assert.Equal(4, erased["orders"]!.GetValue<int>());
        Assert.Equal(4, erased["events"]!.GetValue<int>());
        Assert.Equal(4, erased["deliveries"]!.GetValue<int>());
        Assert.Equal(3, erased["deliveryAttempts"]!.GetValue<int>());
        Assert.Equal(1, erased["confirmations"]!.GetValue<int>());
        Assert.Equal(1, erased["confirmationAttempts"]!.GetValue<int>());
        Assert.Equal(4, erased["historyLines"]!.GetValue<int>());
        Assert.Equal(2, erased["inboundLogEntries"]!.GetValue<int>());

        // Nothing of theirs through the API.
        for (var orderId = first; orderId <= first + 4; orderId++)
        {
            if (orderId == first + 3)
            {
                continue;
            }
            await AssertNotFoundAsync(await api.GetAsync($"/api/v1/orders/{orderId}"));
            Assert.Empty((await ReadOkAsync(await api.GetAsync($"/api/v1/deliveries?orderId={orderId}")))["items"]!.AsArray());
        }
        foreach (var id in sent.Append(pending))
        {
            await AssertNotFoundAsync(await api.GetAsync($"/api/v1/deliveries/{id}"));
        }
        await AssertNotFoundAsync(await api.GetAsync($"/api/v1/orders/{first}/confirmation"));
        Assert.Empty(await HistoryAsync(api, customer));
        var everything = await api.GetStringAsync("/api/v1/deliveries?limit=500");
        Assert.DoesNotContain(customer, everything, StringComparison.Ordinal);
        var inbound = await api.GetStringAsync("/api/v1/inbound-log");
        Assert.DoesNotContain(marker, inbound, StringComparison.Ordinal);
        Assert.DoesNotContain(Uri.EscapeDataString(marker), inbound, StringComparison.Ordinal);
        Assert.DoesNotContain(customer, inbound, StringComparison.Ordinal);

        // Everyone else's is all there.
        await ReadOkAsync(await api.GetAsync($"/api/v1/orders/{first + 3}"));
        Assert.Equal("succeeded", (await ReadOkAsync(await api.GetAsync($"/api/v1/deliveries/{keep}")))["delivery"]!["status"]!.GetValue<string>());
        Assert.Single(await HistoryAsync(api, "someone-else"));
        await ReadOkAsync(await other.GetAsync($"/api/v1/orders/{first}"));

        // Erasing again finds nothing; a bad id is refused, naming it.
        var again = await ReadOkAsync(await api.DeleteAsync($"/api/v1/customers/{customer}"));
        Assert.Equal(0, again["orders"]!.GetValue<int>());
        await AssertProblemAsync(await api.DeleteAsync($"/api/v1/customers/{new string('7', 65)}"), 400, "customerId");
        await AssertProblemAsync(await api.DeleteAsync("/api/v1/customers/%20padded"), 400, "customerId");

        if (Storage == StorageKind.Sqlite)
        {
            await AssertNotInFilesAsync(hub, marker);
        }
    }

    /// secure_delete: once the write-ahead log is checkpointed into the file, the erased values
    /// are nowhere in the database's bytes (free pages included).
    private static async Task AssertNotInFilesAsync(HubFactory hub, string marker)
    {
        var connectionString = hub.Services.GetRequiredService<IConfiguration>().GetConnectionString("Postback")!;
        var file = new SqliteConnectionStringBuilder(connectionString).DataSource;
        await using (var connection = new SqliteConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var pragma = connection.CreateCommand();
            pragma.CommandText = "PRAGMA busy_timeout = 10000;";
            await pragma.ExecuteNonQueryAsync();
            await DeliveryScenario.WaitUntilAsync(async () =>
            {
                await using var checkpoint = connection.CreateCommand();
                checkpoint.CommandText = "PRAGMA wal_checkpoint(TRUNCATE);";
                await using var reader = await checkpoint.ExecuteReaderAsync();
                return await reader.ReadAsync() && reader.GetInt64(0) == 0;
            }, TimeSpan.FromSeconds(30), () => "the write-ahead log could not be checkpointed");
        }
        var needle = Encoding.UTF8.GetBytes(marker);
        foreach (var path in new[] { file, file + "-wal" }.Where(File.Exists))
        {
            byte[] bytes;
            await using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            {
                bytes = new byte[stream.Length];
                await stream.ReadExactlyAsync(bytes);
            }
            Assert.True(bytes.AsSpan().IndexOf(needle) < 0, $"the erased address is still in {Path.GetFileName(path)}");
        }
    }

    private static async Task<long> CreatePluginInstanceAsync(HttpClient api)
    {
        await ReadOkAsync(await api.PostJsonAsync("/api/v1/campaigns", new
        {
            campaignId = "259",
            name = "Test Lander",
            products = new[] { new { productId = "P-KIT", sku = "KIT-1", name = "Starter kit", price = 49.95m, recurring = false } },
        }), System.Net.HttpStatusCode.Created);
        var instance = await ReadOkAsync(await api.PostJsonAsync("/api/v1/plugin-instances", new
        {
            name = "CRM", kind = "konnektive", campaignId = "259", secret = Secret, importUnknownSkus = false, enabled = true,
        }), System.Net.HttpStatusCode.Created);
        return instance["id"]!.GetValue<long>();
    }

    private static Dictionary<string, string> PostbackFields(long instanceId, string secret, long orderId, string customerId, string email) => new()
    {
        ["orderId"] = orderId.ToString(CultureInfo.InvariantCulture),
        ["customerId"] = customerId,
        ["customerType"] = "NEW_SALE",
        ["orderStatus"] = "COMPLETE",
        ["product1_sku"] = "KIT-1",
        ["product1_qty"] = "1",
        ["emailAddress"] = email,
        ["pluginInstanceId"] = instanceId.ToString(CultureInfo.InvariantCulture),
        ["secret"] = secret,
    };

    private static async Task<HttpResponseMessage> PostFormAsync(HubFactory hub, Dictionary<string, string> fields)
    {
        using var crm = hub.Api(key: null);
        return await crm.PostAsync("/api/v1/plugins/webhooks/konnektive", new FormUrlEncodedContent(fields));
    }
}

public sealed class ErasureSqliteTests() : ErasureTests(StorageKind.Sqlite);

public sealed class ErasurePostgresTests() : ErasureTests(StorageKind.Postgres);
