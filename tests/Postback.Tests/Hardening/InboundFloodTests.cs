using System.Collections.Concurrent;
using System.Net;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Postback.Orders;
using Postback.Plugins;
using Postback.Tests.Support;
using static Postback.Tests.Support.DeliveryScenario;

namespace Postback.Tests.Hardening;

/// Issue 12, finding 1: a flood of refused postbacks (anyone who knows an instance id can send
/// them) must neither fill the disk through the inbound log nor stop the CRM's own postbacks.
public sealed class InboundFloodTests
{
    private const int Flood = 10_000;

    [Fact]
    public async Task Ten_thousand_refused_postbacks_add_well_under_2_MB_get_429_past_the_limit_and_the_crm_keeps_flowing()
    {
        await using var hub = await HubFactory.StartAsync();
        using var api = hub.Api();
        var instance = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/plugin-instances", new { name = "CRM", kind = "konnektive" }), HttpStatusCode.Created);
        var instanceId = instance["id"]!.ToString();
        var secret = instance["secret"]!.GetValue<string>();
        var before = await DatabaseBytesAsync(hub);

        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = 32 };
        using var attacker = new HttpClient(handler) { BaseAddress = api.BaseAddress };
        var payload = new string('x', 4096);
        var statuses = new ConcurrentDictionary<int, int>();
        var retryAfterSeen = 0;
        // Bounded in count, and in time only as a guard against hanging.
        using var guard = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var flood = Parallel.ForEachAsync(Enumerable.Range(0, Flood), new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = guard.Token }, async (i, ct) =>
        {
            using var response = await attacker.PostAsync("/api/v1/plugins/webhooks/konnektive", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["pluginInstanceId"] = instanceId, ["secret"] = "wrong-secret", ["orderId"] = (800_000 + i).ToString(System.Globalization.CultureInfo.InvariantCulture), ["note"] = payload,
            }), ct);
            statuses.AddOrUpdate((int)response.StatusCode, 1, (_, n) => n + 1);
            if (response.StatusCode == HttpStatusCode.TooManyRequests && response.Headers.RetryAfter?.Delta > TimeSpan.Zero)
            {
                Interlocked.Increment(ref retryAfterSeen);
            }
        });

        // The CRM's own postbacks, from the same address, while the flood goes on.
        using var crm = hub.Api(key: null);
        var crmStatuses = new List<int>();
        var sent = 0;
        while (!flood.IsCompleted || sent < 20)
        {
            var answer = await crm.PostAsync("/api/v1/plugins/webhooks/konnektive", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["pluginInstanceId"] = instanceId, ["secret"] = secret, ["orderId"] = (900_000 + sent).ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["customerType"] = "NEW_SALE", ["product1_id"] = "P1",
            }), guard.Token);
            crmStatuses.Add((int)answer.StatusCode);
            sent++;
        }
        await flood;

        Assert.Equal(Flood, statuses.Values.Sum());
        Assert.True(statuses.GetValueOrDefault(429) > 0, $"no 429 among {string.Join(", ", statuses.Select(s => $"{s.Key}: {s.Value}"))}");
        Assert.Equal(statuses.GetValueOrDefault(429), retryAfterSeen);
        Assert.Equal([401, 429], statuses.Keys.Order());
        Assert.All(crmStatuses, s => Assert.Equal(200, s));
        Assert.Equal(sent, await hub.WithDbAsync(db => db.Orders.CountAsync(o => o.OrderId >= 900_000)));

        // Every refused postback is accounted for: the first few whole, the rest counted on one
        // row per hour (written in the background).
        var id = long.Parse(instanceId, System.Globalization.CultureInfo.InvariantCulture);
        await WaitUntilAsync(async () => await RefusedAccountedAsync(hub, id) == Flood, TimeSpan.FromSeconds(60),
            () => $"refused postbacks accounted for: {RefusedAccountedAsync(hub, id).Result} of {Flood}");
        var refusedRows = await hub.WithDbAsync(db => db.InboundLog.CountAsync(e => e.PluginInstanceId == id && e.Outcome != "accepted"));
        Assert.InRange(refusedRows, 1, 2 * 21); // an hour boundary during the run doubles it at most
        var growth = await DatabaseBytesAsync(hub) - before;
        Assert.True(growth < 2 * 1024 * 1024, $"the database grew by {growth:N0} bytes");
    }

    private static async Task<long> RefusedAccountedAsync(HubFactory hub, long instanceId)
    {
        var rows = await hub.WithDbAsync(db => db.InboundLog.AsNoTracking().Where(e => e.PluginInstanceId == instanceId && e.Outcome != "accepted")
            .Select(e => new { e.Outcome, e.Reason }).ToListAsync());
        return rows.Sum(r => r.Outcome == "counted" ? long.Parse(r.Reason!.Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) : 1);
    }

    /// The SQLite file once the write-ahead log is folded into it.
    private static Task<long> DatabaseBytesAsync(HubFactory hub) => hub.WithDbAsync(async db =>
    {
        await db.Database.ExecuteSqlRawAsync("PRAGMA wal_checkpoint(TRUNCATE)");
        var path = new SqliteConnectionStringBuilder(db.Database.GetConnectionString()).DataSource;
        return new FileInfo(path).Length;
    });
}
