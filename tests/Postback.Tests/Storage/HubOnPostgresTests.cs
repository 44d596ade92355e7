using Postback.Tests.Support;

namespace Postback.Tests.Storage;

/// The whole hub on PostgreSQL: migrations at start-up, the bootstrap key, and the API path
/// from catalog to preview, so nothing in the request path is SQLite-only.
public sealed class HubOnPostgresTests
{
    [Fact]
    public async Task Campaign_profile_event_and_preview_work_on_postgres()
    {
        await using var hub = await HubFactory.StartAsync(StorageKind.Postgres);
        using var api = hub.Api();

        var campaign = await api.PostJsonAsync("/api/v1/campaigns", new
        {
            campaignId = "259",
            name = "Test Lander",
            products = new[] { new { productId = "12", sku = "TRIAL-1", name = "Trial", price = 4.95m, recurring = true } },
        });
        Assert.Equal(201, (int)campaign.StatusCode);

        var profile = await api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "Subscriptions",
            postbackUrl = "https://erp.example.com/subscriptions",
            exportDelayMinutes = 5,
            mappings = new object[] { new { exportName = "type", field = "customerType" }, new { exportName = "sku", field = "product1_sku" } },
            routes = new[] { new { customerTypes = new[] { "subscription_started" }, campaignIds = new[] { "259" }, productIds = Array.Empty<string>() } },
        });
        Assert.Equal(201, (int)profile.StatusCode);
        var profileId = (await Json.ReadAsync(profile))["id"]!.GetValue<long>();

        var accepted = await api.PostJsonAsync("/api/v1/events", new
        {
            eventId = "pg-1",
            type = "new_sale",
            occurredAt = "2026-11-22T10:00:00+02:00",
            order = new { orderId = 77001, campaignId = "259", items = new[] { new { productId = "12", sku = "TRIAL-1", qty = 1 } } },
        });
        Assert.Equal(202, (int)accepted.StatusCode);
        var matched = (await Json.ReadAsync(accepted))["deliveries"]!.AsArray();
        var match = Assert.Single(matched);
        // Recurring in the catalog, so the sale is also a subscription start.
        Assert.Equal("subscription_started", match!["customerType"]!.GetValue<string>());
        Assert.Equal(DateTimeOffset.Parse("2026-11-22T08:05:00Z", System.Globalization.CultureInfo.InvariantCulture), match["dueAt"]!.GetValue<DateTimeOffset>());

        var again = await api.PostJsonAsync("/api/v1/events", new { eventId = "pg-1", type = "new_sale", order = new { orderId = 77001 } });
        Assert.Equal(200, (int)again.StatusCode);

        var preview = await api.PostJsonAsync($"/api/v1/export-profiles/{profileId}/preview", new { orderId = 77001, customerType = "new_sale" });
        var request = (await Json.ReadAsync(preview))["request"]!;
        Assert.Equal("https://erp.example.com/subscriptions?type=subscription_started&sku=TRIAL-1", request["url"]!.GetValue<string>());

        var order = await Json.ReadAsync(await api.GetAsync("/api/v1/orders/77001"));
        Assert.Single(order["events"]!.AsArray());
    }

    [Fact]
    public async Task A_binary_answer_with_NUL_bytes_stopped_every_outcome_from_being_recorded()
    {
        // PostgreSQL text cannot hold NUL: before the fix the whole outcome batch failed, again
        // and again, and dispatch stalled for every tenant.
        await using var hub = await HubFactory.StartAsync(StorageKind.Postgres, dispatch: true);
        await using var receiver = await Receiver.StartAsync();
        receiver.Respond = _ => (200, "GIF89a\0\0\u0001");
        using var api = hub.Api();
        Assert.Equal(201, (int)(await api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "pixel",
            postbackUrl = receiver.Url("/pixel.gif"),
            mappings = new[] { new { exportName = "o", field = "orderId" } },
            routes = new[] { new { customerTypes = new[] { "new_sale" } } },
        })).StatusCode);
        var accepted = await Json.ReadAsync(await api.PostJsonAsync("/api/v1/events", new { type = "new_sale", order = new { orderId = 77100 } }));
        var id = accepted["deliveries"]![0]!["id"]!.GetValue<long>();

        System.Text.Json.Nodes.JsonNode detail = null!;
        await DeliveryScenario.WaitUntilAsync(
            async () => (detail = await Json.ReadAsync(await api.GetAsync($"/api/v1/deliveries/{id}")))["delivery"]!["status"]!.GetValue<string>() == "succeeded",
            TimeSpan.FromSeconds(30), () => "the delivery's outcome was never recorded: " + detail?.ToJsonString(), 50);
        Assert.StartsWith("GIF89a", detail["attempts"]![0]!["response"]!["bodyExcerpt"]!.GetValue<string>());
    }
}
