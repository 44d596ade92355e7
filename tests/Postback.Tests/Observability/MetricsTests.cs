using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Postback.Tests.FileExports;
using Postback.Tests.Support;

namespace Postback.Tests.Observability;

/// /metrics of a hub process (its own process, so no other test's hub adds to its counters)
/// after deliveries of every kind to a real receiver on 127.0.0.1: each metric docs/observability.md
/// lists is there, parsed from the Prometheus text format, with the counts the scenario caused.
public sealed class MetricsTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Metrics_after_deliveries_show_every_instrument_with_the_expected_counts()
    {
        await using var receiver = await Receiver.StartAsync();
        receiver.Respond = r => r.Path.StartsWith("/fail", StringComparison.Ordinal) ? (500, "down") : (200, "OK");
        var data = DeliveryScenario.TempDirectory("metrics");
        // A failed attempt's retry is due in an hour: each failing delivery is tried exactly once.
        await using var hub = await HubProcess.StartSqliteAsync(data, "metrics-hub", new Dictionary<string, string?>
        {
            ["Postback:Delivery:FirstRetrySeconds"] = "3600",
            // File runs: a failed upload is retried within seconds, so one is retried while the test looks.
            ["Postback:FileExports:FolderRoot"] = FileServers.FolderRoot,
            ["Postback:FileExports:FirstRetrySeconds"] = "1",
            ["Postback:FileExports:PollSeconds"] = "1",
        });
        using var api = hub.Api();

        await CreateProfileAsync(api, receiver.Url("/ok"), "new_sale", giveUpAfterHours: null);
        await CreateProfileAsync(api, receiver.Url("/fail/give-up"), "upsell", giveUpAfterHours: 1);
        await CreateProfileAsync(api, receiver.Url("/fail/retry"), "partial", giveUpAfterHours: null);

        // 3 sales (succeed), an upsell that happened 2 h ago for a profile that gives up after
        // 1 h (fails for good at its first failure), a partial (fails once, then is cancelled).
        await DeliveryScenario.PostBatchAsync(api, "m", 9_100, 3);
        Assert.Equal(HttpStatusCode.Accepted, (await api.PostJsonAsync("/api/v1/events", new
        {
            eventId = "m-upsell", type = "upsell", occurredAt = DateTimeOffset.UtcNow.AddHours(-2), order = new { orderId = 9_200 },
        })).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await api.PostJsonAsync("/api/v1/events", new
        {
            eventId = "m-partial", type = "partial", order = new { orderId = 9_300 },
        })).StatusCode);

        // A CRM postback through a plugin instance (a fourth sale), and one for an instance that does not exist.
        var instance = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/plugin-instances", new { name = "Konnektive", kind = "konnektive" }), HttpStatusCode.Created);
        var instanceId = instance["id"]!.GetValue<long>();
        var secret = instance["secret"]!.GetValue<string>();
        using var crm = new HttpClient { BaseAddress = hub.BaseAddress };
        var accepted = await crm.PostAsync("/api/v1/plugins/webhooks/konnektive", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["pluginInstanceId"] = instanceId.ToString(CultureInfo.InvariantCulture),
            ["secret"] = secret,
            ["orderId"] = "9400",
            ["customerType"] = "NEW_SALE",
        }));
        Assert.True(accepted.IsSuccessStatusCode, await accepted.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.NotFound, (await crm.GetAsync("/api/v1/plugins/webhooks/konnektive?pluginInstanceId=987654&secret=x")).StatusCode);

        await DeliveryScenario.WaitUntilAsync(async () =>
        {
            var rows = await DeliveryScenario.ListDeliveriesAsync(api);
            return rows.Count == 6 && rows.Count(r => r.Status == "succeeded") == 4 && rows.Count(r => r.Status == "failed") == 1
                && rows.Any(r => r is { Status: "pending", Attempts: 1, InFlight: false });
        }, Timeout, () => "deliveries: 4 succeeded, 1 failed, 1 pending after one attempt");
        var retried = (await DeliveryScenario.ListDeliveriesAsync(api, "pending")).Single();
        Assert.Equal(HttpStatusCode.OK, (await api.PostAsync($"/api/v1/deliveries/{retried.Id}/cancel", null)).StatusCode);

        var fileRetries = await RunFilesAsync(api);

        // Counters are added right after the outcome's commit; the backlog gauges are read at most every 5 s.
        PrometheusText metrics = null!;
        await DeliveryScenario.WaitUntilAsync(async () =>
        {
            metrics = await ScrapeAsync(hub);
            return metrics.Value("postback_deliveries_total", ("status", "succeeded")) == 4
                && metrics.Value("postback_deliveries_pending") == 0
                && metrics.Value("postback_file_runs_total", ("status", "failed")) == 1;
        }, Timeout, () => "postback_deliveries_total{status=succeeded} 4, postback_deliveries_pending 0, postback_file_runs_total{status=failed} 1:\n" + metrics?.Text);

        Assert.Equal(5, metrics.Value("postback_events_ingested_total", ("source", "api")));
        Assert.Equal(1, metrics.Value("postback_events_ingested_total", ("source", "plugin")));
        Assert.Equal(4, metrics.Value("postback_deliveries_total", ("status", "succeeded")));
        Assert.Equal(1, metrics.Value("postback_deliveries_total", ("status", "retrying")));
        Assert.Equal(1, metrics.Value("postback_deliveries_total", ("status", "failed")));
        Assert.Equal(1, metrics.Value("postback_deliveries_total", ("status", "cancelled")));
        Assert.Equal(0, metrics.Value("postback_confirmations_total", ("status", "succeeded")));
        Assert.Equal(1, metrics.Value("postback_file_runs_total", ("status", "succeeded")));
        Assert.Equal(fileRetries, metrics.Value("postback_file_runs_total", ("status", "retrying")));
        Assert.Equal(1, metrics.Value("postback_file_runs_total", ("status", "failed")));
        Assert.Equal(4, metrics.Value("postback_delivery_attempt_duration_seconds_count", ("outcome", "succeeded")));
        Assert.Equal(2, metrics.Value("postback_delivery_attempt_duration_seconds_count", ("outcome", "rejected")));
        Assert.Equal(4, metrics.Value("postback_delivery_latency_seconds_count"));
        Assert.Equal(0, metrics.Value("postback_deliveries_pending"));
        Assert.Equal(0, metrics.Value("postback_deliveries_oldest_due_age_seconds"));
        Assert.Equal(0, metrics.Value("postback_endpoints_on_hold"));
        Assert.Equal(1, metrics.Value("postback_inbound_postbacks_total", ("outcome", "accepted")));
        Assert.Equal(1, metrics.Value("postback_inbound_postbacks_total", ("outcome", "unknown_instance")));
        Assert.Equal(0, metrics.Value("postback_inbound_postbacks_total", ("outcome", "refused")));

        // ASP.NET Core, HttpClient and the runtime's own instruments.
        Assert.Contains("http_server_request_duration_seconds_count", metrics.Names);
        Assert.Contains("http_client_request_duration_seconds_count", metrics.Names);
        Assert.Contains(metrics.Names, n => n.StartsWith("dotnet_gc_", StringComparison.Ordinal) || n.StartsWith("process_runtime_dotnet_", StringComparison.Ordinal));

        // Labels are bounded: no delivery, order or profile id and no URL in any series of ours.
        foreach (var sample in metrics.Samples.Where(s => s.Name.StartsWith("postback_", StringComparison.Ordinal)))
        {
            Assert.All(sample.Labels.Keys, label => Assert.Contains(label, (string[])["source", "status", "outcome", "le", "otel_scope_name", "otel_scope_version"]));
        }
        Assert.DoesNotContain(receiver.BaseUri.Port.ToString(CultureInfo.InvariantCulture), string.Join('\n', metrics.Samples.Where(s => s.Name.StartsWith("postback_", StringComparison.Ordinal)).SelectMany(s => s.Labels.Values)));
        Assert.Empty(hub.ErrorLines);
        DeliveryScenario.DeleteDirectory(data);
    }

    [Fact]
    public async Task Metrics_can_require_the_api_key_or_be_turned_off()
    {
        var data = DeliveryScenario.TempDirectory("metrics-key");
        await using (var hub = await HubProcess.StartSqliteAsync(data, "metrics-key", new Dictionary<string, string?> { ["Postback:Metrics:RequireKey"] = "true" }))
        {
            using var anonymous = hub.Api(key: null);
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/metrics")).StatusCode);
            using var api = hub.Api();
            var scraped = await api.GetAsync("/metrics");
            Assert.Equal(HttpStatusCode.OK, scraped.StatusCode);
            Assert.Contains("postback_deliveries_pending", await scraped.Content.ReadAsStringAsync());
        }
        await using (var hub = await HubProcess.StartSqliteAsync(data, "metrics-off", new Dictionary<string, string?> { ["Postback:Metrics:Enabled"] = "false" }))
        {
            using var api = hub.Api();
            Assert.Equal(HttpStatusCode.NotFound, (await api.GetAsync("/metrics")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await api.GetAsync("/health/ready")).StatusCode);
        }
        DeliveryScenario.DeleteDirectory(data);
    }

    /// Two file profiles: one writing a day to a folder (succeeded), and one sending to an FTP
    /// port where nothing listens, retried until its route is removed, which fails it for good
    /// (retrying once per failed attempt before that, failed once). Returns how many retries were recorded: the
    /// failing run's attempts but the last.
    private static async Task<double> RunFilesAsync(HttpClient api)
    {
        var day = DateOnly.FromDateTime(DateTime.UtcNow).AddDays(-1).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        // Scheduled an hour ago (UTC): today's run fell due before the profiles existed, so the
        // scheduler adds none for a day; only the runs asked for below happen.
        var schedule = new { time = DateTime.UtcNow.AddHours(-1).ToString("HH:mm", CultureInfo.InvariantCulture), timeZone = "UTC" };
        async Task<long> CreateAsync(string name, Dictionary<string, object?> file)
        {
            file["schedule"] = schedule;
            var created = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/export-profiles", new
            {
                name,
                type = "file",
                mappings = new[] { new { exportName = "order_id", field = "orderId" } },
                routes = new[] { new { name = "sales", customerTypes = new[] { "new_sale" } } },
                file,
            }), HttpStatusCode.Created);
            return created["id"]!.GetValue<long>();
        }
        async Task<JsonNode> RunAsync(long profileId, Func<JsonNode, bool> done, string what)
        {
            var run = (await Json.ReadOkAsync(await api.PostJsonAsync($"/api/v1/export-profiles/{profileId}/runs", new { date = day }), HttpStatusCode.Accepted)).AsArray().Single()!;
            JsonNode now = run;
            await DeliveryScenario.WaitUntilAsync(async () =>
            {
                now = await Json.ReadOkAsync(await api.GetAsync($"/api/v1/export-profiles/{profileId}/runs/{run["id"]}"));
                return done(now);
            }, Timeout, () => what + ": " + now.ToJsonString());
            return now;
        }

        var (okDirectory, _) = FileServers.NewDirectory(Postback.ExportProfiles.FileDestinations.Folder);
        var ok = await CreateAsync("file-ok", FileServers.Settings(Postback.ExportProfiles.FileDestinations.Folder, okDirectory));
        await RunAsync(ok, r => r["status"]!.GetValue<string>() == "succeeded", "the day's file should be uploaded");

        var (remote, _) = FileServers.NewDirectory(Postback.ExportProfiles.FileDestinations.Ftp);
        var gone = await CreateAsync("file-down", FileServers.Settings(Postback.ExportProfiles.FileDestinations.Ftp, remote, port: FileServers.FreePort()));
        var failing = await RunAsync(gone, r => r["attempts"]!.GetValue<int>() >= 1 && r["lastError"] is not null, "the upload should have failed once");
        Assert.Equal("pending", failing["status"]!.GetValue<string>());
        // Without the route, the next attempt fails the run for good.
        var profile = (await Json.ReadOkAsync(await api.GetAsync($"/api/v1/export-profiles/{gone}"))).AsObject();
        foreach (var readOnly in new[] { "id", "createdAt", "updatedAt" })
        {
            profile.Remove(readOnly);
        }
        profile["file"]!.AsObject().Remove("hasPrivateKey");
        profile["routes"] = new JsonArray();
        await Json.ReadOkAsync(await api.PutAsync($"/api/v1/export-profiles/{gone}",
            new StringContent(profile.ToJsonString(), System.Text.Encoding.UTF8, "application/json")));
        JsonNode failed = failing;
        await DeliveryScenario.WaitUntilAsync(async () =>
        {
            failed = await Json.ReadOkAsync(await api.GetAsync($"/api/v1/export-profiles/{gone}/runs/{failing["id"]}"));
            return failed["status"]!.GetValue<string>() == "failed";
        }, Timeout, () => "the run should have failed once its route was gone: " + failed.ToJsonString());
        Assert.Contains("no longer has route", failed["lastError"]!.GetValue<string>(), StringComparison.Ordinal);
        return failed["attempts"]!.GetValue<int>() - 1;
    }

    private static async Task CreateProfileAsync(HttpClient api, string url, string customerType, int? giveUpAfterHours)
    {
        var response = await api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = customerType,
            postbackUrl = url,
            exportDelayMinutes = 0,
            giveUpAfterHours,
            mappings = new[] { new { exportName = "order_id", field = "orderId" } },
            routes = new[] { new { customerTypes = new[] { customerType } } },
        });
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
    }

    private static async Task<PrometheusText> ScrapeAsync(HubProcess hub)
    {
        using var client = hub.Api(key: null);
        var response = await client.GetAsync("/metrics");
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"/metrics answered {(int)response.StatusCode}: {text}");
        return PrometheusText.Parse(text);
    }
}
