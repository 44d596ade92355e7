using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using Postback.Catalog;
using Postback.Orders;
using Postback.Plugins;
using Postback.Retention;
using Postback.Storage;
using Postback.Tests.Support;
using static Postback.Tests.Support.Json;

namespace Postback.Tests.Plugins;

/// SKU linking and the inbound log: SKU links against postbacks in
/// flight, linking in bounded batches, the SKU list's pages, a postback stored whole or not at
/// all, the inbound log's retention, and SKUs with a '/'. On both storages (plus PostgreSQL-only
/// interleavings forced with real table and row locks).
public abstract class SkuLinkingAndInboundLogTests(PluginHub fixture)
{
    private static long _nextOrder = 900_000;

    protected HubFactory Hub => fixture.Hub;

    protected static long NextOrderId() => Interlocked.Increment(ref _nextOrder);

    protected async Task<(long Id, string Secret)> CreateInstanceAsync(bool importUnknownSkus)
    {
        var view = await ReadOkAsync(await Hub.Api().PostJsonAsync("/api/v1/plugin-instances", new
        {
            name = "Review",
            kind = "konnektive",
            campaignId = PluginHub.CampaignId,
            importUnknownSkus,
            enabled = true,
        }), HttpStatusCode.Created);
        return (view["id"]!.GetValue<long>(), view["secret"]!.GetValue<string>());
    }

    protected Dictionary<string, string> Fields(long instanceId, string secret, long orderId, string sku) => new()
    {
        ["orderId"] = orderId.ToString(CultureInfo.InvariantCulture),
        ["customerType"] = "NEW_SALE",
        ["orderStatus"] = "COMPLETE",
        ["product1_sku"] = sku,
        ["product1_qty"] = "1",
        ["product1_name"] = "Mystery",
        ["product1_price"] = "9.99",
        ["emailAddress"] = "jane@example.com",
        ["pluginInstanceId"] = instanceId.ToString(CultureInfo.InvariantCulture),
        ["secret"] = secret,
    };

    protected async Task<HttpResponseMessage> PostFormAsync(Dictionary<string, string> fields)
    {
        using var crm = Hub.Api(key: null);
        return await crm.PostAsync("/api/v1/plugins/webhooks/konnektive", new FormUrlEncodedContent(fields));
    }

    protected async Task<JsonNode> OrderAsync(long orderId) => await ReadOkAsync(await Hub.Api().GetAsync($"/api/v1/orders/{orderId}"));

    protected Task<long> OrganizationIdAsync() => Task.FromResult(fixture.OrganizationId);

    /// Orders carrying the SKU on one unresolved line, written straight to the table (as ingest
    /// stores them), so a test can have many quickly.
    protected async Task<List<long>> StoreOrdersAsync(string sku, int count)
    {
        var organizationId = fixture.OrganizationId;
        var ids = Enumerable.Range(0, count).Select(_ => NextOrderId()).ToList();
        await Hub.WithDbAsync(async db =>
        {
            var now = DateTimeOffset.UtcNow;
            foreach (var id in ids)
            {
                var data = new OrderData
                {
                    OrderId = id,
                    Fields = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { ["orderId"] = id.ToString(CultureInfo.InvariantCulture) },
                    Items = [new OrderItem(null, sku, "Mystery", 1, 9.99m, false)],
                };
                db.Orders.Add(new StoredOrder { OrganizationId = organizationId, OrderId = id, Data = OrderJson.Serialize(data), Version = 1, CreatedAt = now, UpdatedAt = now });
            }
            return await db.SaveChangesAsync();
        });
        return ids;
    }

    protected Task<int> ResolvedCountAsync(IReadOnlyList<long> orderIds, string productId) => Hub.WithDbAsync(async db =>
        (await db.Orders.AsNoTracking().Where(o => orderIds.Contains(o.OrderId)).Select(o => o.Data).ToListAsync())
            .Count(d => OrderJson.Deserialize(d).Items.All(i => i.ProductId == productId)));

    private PluginMaintenance Maintenance(TimeProvider time) => new(
        Hub.Services.GetRequiredService<ISkuStore>(), time, Microsoft.Extensions.Options.Options.Create(new PluginOptions()), NullLogger<PluginMaintenance>.Instance);

    // The inbound log's retention is the retention sweep's now; the deprecated key still works.
    private RetentionWorker Retention(TimeProvider time, int days)
    {
        var (options, warnings) = RetentionOptions.Read(new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Postback:Plugins:InboundLogDays"] = days.ToString(CultureInfo.InvariantCulture),
        }).Build());
        Assert.Equal(TimeSpan.FromDays(days), options.InboundLog);
        var sweep = new RetentionSweep(Hub.Services.GetRequiredService<IRetentionStore>(), Hub.Services.GetRequiredService<IJobLeaseStores>(), time, options, NullLogger<RetentionSweep>.Instance);
        return new RetentionWorker(sweep, time, new RetentionWarnings(warnings), NullLogger<RetentionWorker>.Instance);
    }

    [Fact]
    public async Task Linking_resolves_more_orders_than_one_batch_holds_and_says_it_is_complete()
    {
        var sku = $"MANY-{NextOrderId()}";
        var orders = await StoreOrdersAsync(sku, SkuOperations.ResolveBatch * 2 + 37);
        var link = await ReadOkAsync(await Hub.Api().PostJsonAsync($"/api/v1/skus/{sku}/link", new { productId = "P-KIT" }));
        Assert.Equal(orders.Count, link["resolvedOrders"]!.GetValue<int>());
        Assert.Equal(orders.Count, link["resolvedLines"]!.GetValue<int>());
        Assert.True(link["complete"]!.GetValue<bool>());
        Assert.Equal(orders.Count, await ResolvedCountAsync(orders, "P-KIT"));
        Assert.False(await Hub.WithDbAsync(db => db.ImportedSkus.Where(s => s.Sku == sku).Select(s => s.ResolvePending).SingleAsync()));

        // Linking again finds nothing left to do.
        var again = await ReadOkAsync(await Hub.Api().PostJsonAsync($"/api/v1/skus/{sku}/link", new { productId = "P-KIT" }));
        Assert.Equal(0, again["resolvedLines"]!.GetValue<int>());
        Assert.True(again["complete"]!.GetValue<bool>());
    }

    [Fact]
    public async Task A_link_left_pending_is_finished_by_the_background_pass()
    {
        // As a link call that died after saving the link and before resolving the lines leaves it.
        var sku = $"HALF-{NextOrderId()}";
        var orders = await StoreOrdersAsync(sku, 3);
        var organizationId = fixture.OrganizationId;
        await Hub.WithDbAsync(db =>
        {
            db.ImportedSkus.Add(new ImportedSku { OrganizationId = organizationId, Sku = sku, ProductId = "P-REFILL", ResolvePending = true, FirstSeenAt = DateTimeOffset.UtcNow, LinkedAt = DateTimeOffset.UtcNow });
            return db.SaveChangesAsync();
        });
        var resolved = await Maintenance(TimeProvider.System).RunOnceAsync(CancellationToken.None);
        Assert.True(resolved >= orders.Count);
        Assert.Equal(orders.Count, await ResolvedCountAsync(orders, "P-REFILL"));
        Assert.False(await Hub.WithDbAsync(db => db.ImportedSkus.Where(s => s.Sku == sku).Select(s => s.ResolvePending).SingleAsync()));
    }

    [Fact]
    public async Task The_SKU_list_is_paged_with_limit_and_afterId()
    {
        var organizationId = fixture.OrganizationId;
        var prefix = $"PAGE-{NextOrderId()}-";
        await Hub.WithDbAsync(db =>
        {
            for (var i = 0; i < SkuOperations.DefaultPage + 5; i++)
            {
                db.ImportedSkus.Add(new ImportedSku { OrganizationId = organizationId, Sku = prefix + i, FirstSeenAt = DateTimeOffset.UtcNow });
            }
            return db.SaveChangesAsync();
        });
        using var api = Hub.Api();
        Assert.Equal(SkuOperations.DefaultPage, (await ReadOkAsync(await api.GetAsync("/api/v1/skus"))).AsArray().Count);

        var seen = new List<(long Id, string Sku)>();
        long? after = null;
        while (true)
        {
            var page = (await ReadOkAsync(await api.GetAsync($"/api/v1/skus?limit=70{(after is null ? "" : $"&afterId={after}")}"))).AsArray();
            Assert.True(page.Count <= 70);
            if (page.Count == 0)
            {
                break;
            }
            seen.AddRange(page.Select(s => (s!["id"]!.GetValue<long>(), s["sku"]!.GetValue<string>())));
            after = seen[^1].Id;
        }
        Assert.Equal(seen.Select(s => s.Id).Order(), seen.Select(s => s.Id));
        Assert.Equal(seen.Count, seen.Select(s => s.Id).Distinct().Count());
        Assert.Equal(SkuOperations.DefaultPage + 5, seen.Count(s => s.Sku.StartsWith(prefix, StringComparison.Ordinal)));

        await AssertProblemAsync(await api.GetAsync("/api/v1/skus?limit=0"), 400, "limit");
        await AssertProblemAsync(await api.GetAsync($"/api/v1/skus?limit={SkuOperations.MaxPage + 1}"), 400, "limit");
        await AssertProblemAsync(await api.GetAsync("/api/v1/skus?afterId=-1"), 400, "afterId");
        await AssertProblemAsync(await api.GetAsync("/api/v1/skus?limit=many"), 400, "limit");
    }

    [Fact]
    public async Task A_SKU_with_a_slash_is_linked_through_the_body_route()
    {
        var (id, secret) = await CreateInstanceAsync(importUnknownSkus: true);
        var orderId = NextOrderId();
        var sku = $"BOX/{orderId}/B";
        var accepted = await ReadOkAsync(await PostFormAsync(Fields(id, secret, orderId, sku)));
        Assert.Equal(sku, Assert.Single(accepted["importedSkus"]!.AsArray())!.GetValue<string>());

        using var api = Hub.Api();
        var link = await ReadOkAsync(await api.PostJsonAsync("/api/v1/skus/link", new { sku, productId = "P-KIT" }));
        Assert.Equal(sku, link["sku"]!["sku"]!.GetValue<string>());
        Assert.Equal(1, link["resolvedLines"]!.GetValue<int>());
        Assert.Equal("P-KIT", (await OrderAsync(orderId))["order"]!["items"]![0]!["productId"]!.GetValue<string>());

        await AssertProblemAsync(await api.PostJsonAsync("/api/v1/skus/link", new { productId = "P-KIT" }), 400, "sku");
        await AssertProblemAsync(await api.PostJsonAsync("/api/v1/skus/link", new { sku = "X/1", productId = "NOPE" }), 400, "productId");
        await AssertProblemAsync(await api.PostJsonAsync("/api/v1/skus/link", new { sku = " ", productId = "P-KIT" }), 400, "sku");
    }

    [Fact]
    public async Task A_postback_whose_SKU_import_fails_stores_nothing_but_a_failed_log_entry()
    {
        // A real failure of the database on the imported SKU's insert, for BOOM- SKUs only.
        await Hub.WithDbAsync(db => db.Database.ExecuteSqlRawAsync(FailImportSql));
        var (id, secret) = await CreateInstanceAsync(importUnknownSkus: true);
        var orderId = NextOrderId();
        var sku = $"BOOM-{orderId}";

        var response = await PostFormAsync(Fields(id, secret, orderId, sku));
        Assert.Equal(500, (int)response.StatusCode);
        Assert.False(await Hub.WithDbAsync(db => db.Orders.AnyAsync(o => o.OrderId == orderId)));
        Assert.False(await Hub.WithDbAsync(db => db.OrderEvents.AnyAsync(e => e.OrderId == orderId)));
        Assert.False(await Hub.WithDbAsync(db => db.ImportedSkus.AnyAsync(s => s.Sku == sku)));
        var entries = await Hub.WithDbAsync(db => db.InboundLog.AsNoTracking().Where(e => e.PluginInstanceId == id).ToListAsync());
        var entry = Assert.Single(entries);
        Assert.Equal("failed", entry.Outcome);
        Assert.Equal(500, entry.StatusCode);
        Assert.Equal(orderId, entry.OrderId);

        // An accepted postback has its order, event, imported SKU and log entry together.
        var fine = NextOrderId();
        var accepted = await ReadOkAsync(await PostFormAsync(Fields(id, secret, fine, $"FINE-{fine}")));
        Assert.Equal("accepted", accepted["outcome"]!.GetValue<string>());
        Assert.True(await Hub.WithDbAsync(db => db.ImportedSkus.AnyAsync(s => s.Sku == $"FINE-{fine}")));
        Assert.True(await Hub.WithDbAsync(db => db.InboundLog.AnyAsync(e => e.PluginInstanceId == id && e.OrderId == fine && e.Outcome == "accepted")));
    }

    protected abstract string FailImportSql { get; }

    [Fact]
    public async Task Refused_postbacks_keep_a_short_payload_and_old_entries_are_pruned()
    {
        var (id, secret) = await CreateInstanceAsync(importUnknownSkus: false);
        var fields = Fields(id, "wrong-secret-value", NextOrderId(), "KIT-1");
        fields["notes"] = new string('x', 12_000);
        Assert.Equal(401, (int)(await PostFormAsync(fields)).StatusCode);
        var refused = await Hub.WithDbAsync(db => db.InboundLog.AsNoTracking().SingleAsync(e => e.PluginInstanceId == id));
        Assert.Equal("refused", refused.Outcome);
        Assert.True(refused.Payload.Length <= PluginWebhook.MaxRefusedPayload + 1, $"payload of {refused.Payload.Length} characters");

        // An accepted postback keeps the longer payload.
        var ok = Fields(id, secret, NextOrderId(), "KIT-1");
        for (var i = 1; i <= 6; i++)
        {
            ok[$"note{i}"] = new string('y', 900);
        }
        await ReadOkAsync(await PostFormAsync(ok));
        var accepted = await Hub.WithDbAsync(db => db.InboundLog.AsNoTracking().SingleAsync(e => e.PluginInstanceId == id && e.Outcome == "accepted"));
        Assert.True(accepted.Payload.Length > 5_400, $"payload of {accepted.Payload.Length} characters");

        // Retention: an entry older than the inbound log's period goes, a newer one stays, in batches.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var organizationId = fixture.OrganizationId;
        await Hub.WithDbAsync(db =>
        {
            for (var i = 0; i < RetentionOptions.DefaultBatchSize + 10; i++)
            {
                db.InboundLog.Add(new InboundLogEntry
                {
                    OrganizationId = organizationId, PluginInstanceId = id, ReceivedAt = time.GetUtcNow().AddDays(-8).AddMinutes(i),
                    Method = "POST", Outcome = "refused", StatusCode = 401, Payload = "old",
                });
            }
            return db.SaveChangesAsync();
        });
        var maintenance = Retention(time, days: 7);
        await maintenance.StartAsync(CancellationToken.None);
        try
        {
            // The first sweep runs one interval (ten minutes) after start.
            await DeliveryScenario.WaitUntilAsync(
                () =>
                {
                    time.Advance(TimeSpan.FromMinutes(10));
                    return Hub.WithDbAsync(db => db.InboundLog.AllAsync(e => e.PluginInstanceId != id || e.Payload != "old"));
                },
                TimeSpan.FromSeconds(30), () => "old entries still there after the first pass");
            Assert.Equal(2, await Hub.WithDbAsync(db => db.InboundLog.CountAsync(e => e.PluginInstanceId == id)));

            // Eight days on, with a pass every ten minutes, the two recent entries go too.
            // (Moved on again on every look: the pass's next wait may start after a move.)
            time.Advance(TimeSpan.FromDays(8));
            await DeliveryScenario.WaitUntilAsync(
                () =>
                {
                    time.Advance(TimeSpan.FromMinutes(10));
                    return Hub.WithDbAsync(db => db.InboundLog.AllAsync(e => e.PluginInstanceId != id));
                },
                TimeSpan.FromSeconds(30), () => "entries older than seven days still there after the clock moved on");
        }
        finally
        {
            await maintenance.StopAsync(CancellationToken.None);
        }
    }
}

public sealed class SkuLinkingAndInboundLogSqliteTests(SqlitePluginHub fixture) : SkuLinkingAndInboundLogTests(fixture), IClassFixture<SqlitePluginHub>
{
    protected override string FailImportSql =>
        """CREATE TRIGGER IF NOT EXISTS fail_boom_import BEFORE INSERT ON imported_skus WHEN NEW."Sku" LIKE 'BOOM-%' BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END;""";
}

public sealed class SkuLinkingAndInboundLogPostgresTests(PostgresPluginHub fixture) : SkuLinkingAndInboundLogTests(fixture), IClassFixture<PostgresPluginHub>
{
    protected override string FailImportSql => """
        CREATE OR REPLACE FUNCTION fail_boom_import() RETURNS trigger AS $$
        BEGIN
            IF NEW."Sku" LIKE 'BOOM-%' THEN RAISE EXCEPTION 'refused by test trigger'; END IF;
            RETURN NEW;
        END $$ LANGUAGE plpgsql;
        CREATE OR REPLACE TRIGGER fail_boom_import BEFORE INSERT ON imported_skus FOR EACH ROW EXECUTE FUNCTION fail_boom_import();
        """;

    private async Task<NpgsqlConnection> OpenAsync()
    {
        var connection = new NpgsqlConnection(await Hub.WithDbAsync(db => Task.FromResult(db.Database.GetConnectionString()!)));
        await connection.OpenAsync();
        return connection;
    }

    /// Until a session of this database (the hub's) waits for a lock.
    private static async Task WaitForLockWaitAsync(NpgsqlConnection watcher)
    {
        await DeliveryScenario.WaitUntilAsync(async () =>
        {
            await using var command = new NpgsqlCommand(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'", watcher);
            return (long)(await command.ExecuteScalarAsync())! > 0;
        }, TimeSpan.FromSeconds(30), () => "nobody waited for a lock");
    }

    [Fact]
    public async Task A_link_that_commits_while_a_postback_is_in_flight_still_resolves_its_order()
    {
        var (id, secret) = await CreateInstanceAsync(importUnknownSkus: false);
        var orderId = NextOrderId();
        var sku = $"RACE-{orderId}";
        await using var holder = await OpenAsync();
        await using var watcher = await OpenAsync();

        // Reads go on; the postback's insert into orders waits — after it looked up its SKUs.
        await using var hold = await holder.BeginTransactionAsync();
        await new NpgsqlCommand("LOCK TABLE orders IN EXCLUSIVE MODE", holder, hold).ExecuteNonQueryAsync();
        var postback = PostFormAsync(Fields(id, secret, orderId, sku));
        await WaitForLockWaitAsync(watcher);

        // The link commits and scans the orders now: the postback's order is not there yet.
        var link = await ReadOkAsync(await Hub.Api().PostJsonAsync($"/api/v1/skus/{sku}/link", new { productId = "P-KIT" }));
        Assert.Equal(0, link["resolvedLines"]!.GetValue<int>());

        await hold.CommitAsync();
        var accepted = await ReadOkAsync(await postback);
        Assert.Empty(accepted["unknownSkus"]!.AsArray());
        Assert.Equal("P-KIT", (await OrderAsync(orderId))["order"]!["items"]![0]!["productId"]!.GetValue<string>());
    }

    [Fact]
    public async Task Linking_commits_batch_by_batch()
    {
        var sku = $"BATCH-{NextOrderId()}";
        var orders = await StoreOrdersAsync(sku, SkuOperations.ResolveBatch + 20);
        await using var holder = await OpenAsync();
        await using var watcher = await OpenAsync();

        // Hold one order of the second batch: the link waits there, with the first batch committed.
        await using var hold = await holder.BeginTransactionAsync();
        var blocked = await Hub.WithDbAsync(db => db.Orders.Where(o => orders.Contains(o.OrderId)).OrderBy(o => o.Id)
            .Skip(SkuOperations.ResolveBatch + 5).Select(o => o.OrderId).FirstAsync());
        var lockRow = new NpgsqlCommand("SELECT 1 FROM orders WHERE \"OrderId\" = @id FOR UPDATE", holder, hold);
        lockRow.Parameters.AddWithValue("id", blocked);
        await lockRow.ExecuteNonQueryAsync();
        var link = Hub.Api().PostJsonAsync($"/api/v1/skus/{sku}/link", new { productId = "P-KIT" });
        await WaitForLockWaitAsync(watcher);
        Assert.Equal(SkuOperations.ResolveBatch, await ResolvedCountAsync(orders, "P-KIT"));

        await hold.CommitAsync();
        var linked = await ReadOkAsync(await link);
        Assert.Equal(orders.Count, linked["resolvedLines"]!.GetValue<int>());
        Assert.True(linked["complete"]!.GetValue<bool>());
        Assert.Equal(orders.Count, await ResolvedCountAsync(orders, "P-KIT"));
    }
}
