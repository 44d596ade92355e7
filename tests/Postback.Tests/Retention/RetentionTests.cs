using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Postback.Retention;
using Postback.Tests.Support;
using static Postback.Tests.Support.Json;

namespace Postback.Tests.Retention;

/// The steps the retention and erasure tests share.
public abstract class RetentionScenario(StorageKind storage)
{
    private static long _nextOrder = 4_100_000;

    protected StorageKind Storage => storage;

    protected static long NextOrderId() => Interlocked.Add(ref _nextOrder, 10);

    /// A receiver that confirms orders on /confirm and takes every export on /hook.
    protected static async Task<Receiver> ReceiverAsync()
    {
        var receiver = await Receiver.StartAsync();
        receiver.Respond = r => r.Path == "/confirm" ? (200, """{"status":1,"message":"confirmed"}""") : (200, "OK");
        return receiver;
    }

    /// A profile firing at once for new sales (sending the e-mail address), and one firing ten
    /// hours late for partials: its deliveries stay pending throughout a test.
    protected static async Task CreateProfilesAsync(HttpClient api, Receiver receiver)
    {
        await ReadOkAsync(await api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "now",
            postbackUrl = receiver.Url("/hook"),
            exportDelayMinutes = 0,
            mappings = new[] { new { exportName = "order_id", field = "orderId" }, new { exportName = "email", field = "emailAddress" } },
            routes = new[] { new { customerTypes = new[] { "new_sale" } } },
        }), System.Net.HttpStatusCode.Created);
        await ReadOkAsync(await api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "later",
            postbackUrl = receiver.Url("/hook"),
            exportDelayMinutes = 600,
            mappings = new[] { new { exportName = "order_id", field = "orderId" } },
            routes = new[] { new { customerTypes = new[] { "partial" } } },
        }), System.Net.HttpStatusCode.Created);
    }

    protected static async Task<JsonNode> PostEventAsync(HttpClient api, string type, long orderId, string customerId, string email = "someone@example.com")
    {
        var response = await api.PostJsonAsync("/api/v1/events", new
        {
            eventId = $"{type}-{orderId}",
            type,
            order = new { orderId, customerId, emailAddress = email, firstName = "Jane" },
        });
        return await ReadOkAsync(response, System.Net.HttpStatusCode.Accepted);
    }

    protected static long DeliveryOf(JsonNode accepted) => Assert.Single(accepted["deliveries"]!.AsArray())!["id"]!.GetValue<long>();

    protected static async Task WaitForStatusAsync(HttpClient api, IEnumerable<long> ids, string status)
    {
        var wanted = ids.ToHashSet();
        await DeliveryScenario.WaitUntilAsync(
            async () => (await DeliveryScenario.ListDeliveriesAsync(api, status)).Count(d => wanted.Contains(d.Id)) == wanted.Count,
            TimeSpan.FromSeconds(60), () => $"deliveries {string.Join(", ", wanted)} not all {status}");
    }

    protected static async Task ConfirmAsync(HttpClient api, Receiver receiver, long orderId)
    {
        await ReadOkAsync(await api.PutJsonAsync("/api/v1/settings/order-confirmation-webhook", new
        {
            enabled = true,
            url = receiver.Url("/confirm"),
            authenticationToken = "token-123",
            notificationEmails = Array.Empty<string>(),
        }));
        var confirm = await api.PostAsync($"/api/v1/orders/{orderId}/confirm", null);
        Assert.True((int)confirm.StatusCode is 200 or 202, await confirm.Content.ReadAsStringAsync());
        await DeliveryScenario.WaitUntilAsync(
            async () => (await Json.ReadAsync(await api.GetAsync($"/api/v1/orders/{orderId}/confirmation")))["confirmation"]?["status"]?.GetValue<string>() == "confirmed",
            TimeSpan.FromSeconds(60), () => $"order {orderId} not confirmed");
    }

    /// One sweep as of the given time. The hub's own sweep (at start) may hold the lease for a
    /// moment: then this one runs as soon as it is free.
    protected static async Task<RemovedCounts> SweepAsync(HubFactory hub, DateTimeOffset at, RetentionOptions options)
    {
        var sweep = new RetentionSweep(hub.Services.GetRequiredService<IRetentionStore>(), hub.Services.GetRequiredService<IJobLeaseStores>(), new FakeTimeProvider(at), options, NullLogger<RetentionSweep>.Instance);
        RemovedCounts? result = null;
        await DeliveryScenario.WaitUntilAsync(async () => (result = await sweep.RunOnceAsync(CancellationToken.None)) is not null,
            TimeSpan.FromSeconds(30), () => "the retention lease never came free");
        return result!;
    }

    protected static async Task<JsonArray> HistoryAsync(HttpClient api, string customerId) =>
        (await ReadOkAsync(await api.GetAsync($"/api/v1/customers/{Uri.EscapeDataString(customerId)}/history"))).AsArray();
}

/// Retention on the real hub, on both databases: the sweep run with a FakeTimeProvider set
/// days ahead, and once by the running hub itself with a period of real seconds.
public abstract class RetentionTests(StorageKind storage) : RetentionScenario(storage)
{
    [Fact]
    public async Task Finished_deliveries_go_with_their_attempts_after_their_period_and_history_says_the_details_expired()
    {
        await using var receiver = await ReceiverAsync();
        await using var hub = await HubFactory.StartAsync(Storage, dispatch: true);
        using var api = hub.Api();
        await CreateProfilesAsync(api, receiver);
        var first = NextOrderId();
        var customer = $"ret-{first}";
        var sent = new List<long>();
        for (var i = 0; i < 3; i++)
        {
            sent.Add(DeliveryOf(await PostEventAsync(api, "new_sale", first + i, customer)));
        }
        var pending = DeliveryOf(await PostEventAsync(api, "partial", first + 5, customer));
        await WaitForStatusAsync(api, sent, "succeeded");
        var start = DateTimeOffset.UtcNow;

        // 29 days on, nothing is old enough.
        var early = await SweepAsync(hub, start.AddDays(29), RetentionOptions.Default);
        Assert.Equal(0, early.Deliveries);
        foreach (var id in sent)
        {
            await ReadOkAsync(await api.GetAsync($"/api/v1/deliveries/{id}"));
        }

        var removed = await SweepAsync(hub, start.AddDays(31), RetentionOptions.Default);
        Assert.Equal(3, removed.Deliveries);
        Assert.Equal(3, removed.DeliveryAttempts);
        Assert.Equal(3, removed.HistoryLinesExpired);
        foreach (var id in sent)
        {
            await AssertNotFoundAsync(await api.GetAsync($"/api/v1/deliveries/{id}"));
        }
        Assert.Equal("pending", (await ReadOkAsync(await api.GetAsync($"/api/v1/deliveries/{pending}")))["delivery"]!["status"]!.GetValue<string>());

        // The customer's lines stay: final status kept, no link, and saying the details expired.
        var history = await HistoryAsync(api, customer);
        Assert.Equal(3, history.Count);
        foreach (var line in history)
        {
            Assert.NotNull(line!["detailsExpiredAt"]?.GetValue<DateTimeOffset>());
            Assert.Equal("succeeded", line["status"]!.GetValue<string>());
            Assert.Null(line["link"]);
        }
        // Orders are kept by default.
        await ReadOkAsync(await api.GetAsync($"/api/v1/orders/{first}"));

        var report = await ReadOkAsync(await api.GetAsync("/api/v1/storage"));
        Assert.True(report["databaseBytes"]!.GetValue<long>() > 0);
        Assert.Equal("30.00:00:00", report["retention"]!["finishedDeliveries"]!.GetValue<string>());
        Assert.Equal("off", report["retention"]!["orders"]!.GetValue<string>());
        var tables = report["tables"]!.AsArray().ToDictionary(t => t!["table"]!.GetValue<string>(), t => t!["rows"]!.GetValue<long>());
        Assert.Contains("delivery_attempts", tables.Keys);
        Assert.Contains("inbound_log", tables.Keys);
        if (Storage == StorageKind.Sqlite)
        {
            Assert.Equal(1, tables["deliveries"]);
            Assert.Equal(0, tables["delivery_attempts"]);
            Assert.False(report["rowsEstimated"]!.GetValue<bool>());
        }
        else
        {
            Assert.True(report["rowsEstimated"]!.GetValue<bool>());
        }
    }

    [Fact]
    public async Task Idle_orders_go_with_their_events_and_confirmations_unless_work_is_pending()
    {
        await using var receiver = await ReceiverAsync();
        await using var hub = await HubFactory.StartAsync(Storage, dispatch: true);
        using var api = hub.Api();
        await CreateProfilesAsync(api, receiver);
        var first = NextOrderId();
        var customer = $"idle-{first}";
        var sent = new List<long>();
        for (var i = 0; i < 3; i++)
        {
            sent.Add(DeliveryOf(await PostEventAsync(api, "new_sale", first + i, customer)));
        }
        var busy = first + 5;
        DeliveryOf(await PostEventAsync(api, "partial", busy, customer));
        await WaitForStatusAsync(api, sent, "succeeded");
        await ConfirmAsync(api, receiver, first + 1);
        var start = DateTimeOffset.UtcNow;
        var options = RetentionOptions.Default with { Orders = TimeSpan.FromDays(60) };

        // 59 days on, the finished deliveries are past their 30 days; the orders are not past 60.
        var early = await SweepAsync(hub, start.AddDays(59), options);
        Assert.Equal(3, early.Deliveries);
        Assert.Equal(0, early.Orders);
        await ReadOkAsync(await api.GetAsync($"/api/v1/orders/{first}"));

        var removed = await SweepAsync(hub, start.AddDays(61), options);
        Assert.Equal(3, removed.Orders);
        Assert.Equal(3, removed.Events);
        Assert.Equal(1, removed.Confirmations);
        Assert.Equal(1, removed.ConfirmationAttempts);
        for (var i = 0; i < 3; i++)
        {
            await AssertNotFoundAsync(await api.GetAsync($"/api/v1/orders/{first + i}"));
        }
        await AssertNotFoundAsync(await api.GetAsync($"/api/v1/orders/{first + 1}/confirmation"));

        // The order with a delivery still pending stays, with its event.
        var kept = await ReadOkAsync(await api.GetAsync($"/api/v1/orders/{busy}"));
        Assert.Single(kept["events"]!.AsArray());

        // Three export lines and the confirmation's: all kept, all saying the details expired.
        var history = await HistoryAsync(api, customer);
        Assert.Equal(4, history.Count);
        Assert.All(history, line => Assert.NotNull(line!["detailsExpiredAt"]?.GetValue<DateTimeOffset>()));
        Assert.All(history, line => Assert.Null(line!["link"]));
        Assert.Contains(history, line => line!["kind"]!.GetValue<string>() == "confirmation");
    }

    [Fact]
    public async Task The_running_hub_sweeps_deliveries_finished_five_real_seconds_ago()
    {
        await using var receiver = await ReceiverAsync();
        await using var hub = await HubFactory.StartAsync(Storage, dispatch: true, settings: new Dictionary<string, string?>
        {
            ["Postback:Retention:FinishedDeliveries"] = "00:00:05",
            ["Postback:Retention:SweepInterval"] = "00:00:01",
        });
        using var api = hub.Api();
        await CreateProfilesAsync(api, receiver);
        var orderId = NextOrderId();
        var customer = $"live-{orderId}";
        var id = DeliveryOf(await PostEventAsync(api, "new_sale", orderId, customer));
        await WaitForStatusAsync(api, [id], "succeeded");
        var pending = DeliveryOf(await PostEventAsync(api, "partial", orderId + 1, customer));

        await DeliveryScenario.WaitUntilAsync(
            async () => (await api.GetAsync($"/api/v1/deliveries/{id}")).StatusCode == System.Net.HttpStatusCode.NotFound,
            TimeSpan.FromSeconds(90), () => $"delivery {id} still there");
        var line = Assert.Single(await HistoryAsync(api, customer));
        Assert.NotNull(line!["detailsExpiredAt"]?.GetValue<DateTimeOffset>());
        Assert.Equal("succeeded", line["status"]!.GetValue<string>());
        // The sweep that removed it looked at the pending one too and left it.
        await ReadOkAsync(await api.GetAsync($"/api/v1/deliveries/{pending}"));
        var report = await ReadOkAsync(await api.GetAsync("/api/v1/storage"));
        Assert.Equal("00:00:05", report["retention"]!["finishedDeliveries"]!.GetValue<string>());
        Assert.NotNull(report["retention"]!["lastSweepAt"]?.GetValue<DateTimeOffset>());
    }
}

public sealed class RetentionSqliteTests() : RetentionTests(StorageKind.Sqlite);

public sealed class RetentionPostgresTests() : RetentionTests(StorageKind.Postgres);
