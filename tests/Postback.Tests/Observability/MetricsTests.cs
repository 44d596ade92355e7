using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
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

        // Counters are added right after the outcome's commit; the backlog gauges are read at most every 5 s.
        PrometheusText metrics = null!;
        await DeliveryScenario.WaitUntilAsync(async () =>
        {
            metrics = await ScrapeAsync(hub);
            return metrics.Value("postback_deliveries_total", ("status", "succeeded")) == 4
                && metrics.Value("postback_deliveries_pending") == 0;
        }, Timeout, () => "postback_deliveries_total{status=succeeded} 4 and postback_deliveries_pending 0:\n" + metrics?.Text);

        Assert.Equal(5, metrics.Value("postback_events_ingested_total", ("source", "api")));
        Assert.Equal(1, metrics.Value("postback_events_ingested_total", ("source", "plugin")));
        Assert.Equal(4, metrics.Value("postback_deliveries_total", ("status", "succeeded")));
        Assert.Equal(1, metrics.Value("postback_deliveries_total", ("status", "retrying")));
        Assert.Equal(1, metrics.Value("postback_deliveries_total", ("status", "failed")));
        Assert.Equal(1, metrics.Value("postback_deliveries_total", ("status", "cancelled")));
        Assert.Equal(0, metrics.Value("postback_confirmations_total", ("status", "succeeded")));
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
