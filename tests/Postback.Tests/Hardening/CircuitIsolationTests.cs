using System.Net;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.Tests.Support;
using static Postback.Tests.Support.DeliveryScenario;
using Postback.Outbound;

namespace Postback.Tests.Hardening;

/// Issue 12, finding 2: only a receiver's own answers and network failures count toward its
/// circuit. A request that can never be sent fails at once, with the reason, and holds back
/// no one else's deliveries to the same host.
public sealed class CircuitIsolationTests
{
    [Fact]
    public async Task A_header_value_that_can_never_be_sent_fails_its_deliveries_at_once_and_another_organizations_deliveries_to_the_same_host_flow()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var hub = await HubFactory.StartAsync(dispatch: true);
        using var api = hub.Api();
        var (_, otherKey) = await hub.CreateOrganizationAsync("Healthy organization", 4004);
        using var other = hub.Api(otherKey);

        // Refused at save, naming the mapping, by the rule the sender applies.
        var refused = await api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "Accented header", postbackUrl = receiver.Url("/a"), exportDelayMinutes = 0,
            mappings = new object[] { new { exportName = "order_id", field = "orderId" }, new { exportName = "header:X-Greeting", @static = "café" } },
            routes = new[] { new { customerTypes = new[] { "new_sale" } } },
        });
        Assert.Contains("ASCII", await Json.AssertProblemAsync(refused, 400, "mappings[1].static"), StringComparison.Ordinal);

        // A profile saved before that rule (written to the database as it was then).
        var bad = await CreateProfileAsync(api, receiver.Url("/a"), "bad header");
        await hub.WithDbAsync(async db =>
        {
            var profile = await db.ExportProfiles.SingleAsync(p => p.Id == bad);
            profile.Mappings = [.. profile.Mappings, new ExportMapping("header:X-Greeting", null, "café")];
            return await db.SaveChangesAsync();
        });
        await CreateProfileAsync(other, receiver.Url("/b"), "healthy");

        var failing = await PostBatchAsync(api, "bad", 700_000, 12);
        var healthy = await PostBatchAsync(other, "good", 710_000, 12);

        await WaitUntilAsync(async () => (await ListDeliveriesAsync(other, "succeeded")).Count == 12, TimeSpan.FromSeconds(60),
            () => $"the healthy organization's deliveries: {string.Join(", ", ListDeliveriesAsync(other).Result.Select(d => d.Status))}");
        await WaitUntilAsync(async () => (await ListDeliveriesAsync(api, "failed")).Count == 12, TimeSpan.FromSeconds(60),
            () => $"the bad profile's deliveries: {string.Join(", ", ListDeliveriesAsync(api).Result.Select(d => $"{d.Status}/{d.Attempts}/{d.LastError}"))}");

        foreach (var row in await ListDeliveriesAsync(api))
        {
            Assert.Equal("failed", row.Status);
            Assert.Contains("X-Greeting", row.LastError, StringComparison.Ordinal);
            Assert.Contains("never be sent", row.LastError, StringComparison.Ordinal);
        }
        Assert.All(receiver.Received, r => Assert.Equal("/b", r.Path));
        var health = hub.Services.GetRequiredService<EndpointHealth>();
        Assert.Equal((0, null), health.Snapshot(Endpoints.Of(receiver.Url("/a"))));
    }

    [Fact]
    public async Task A_url_the_ssrf_guard_refuses_fails_at_once_and_does_not_count_against_the_receiver()
    {
        await using var receiver = await Receiver.StartAsync();
        await using var hub = await HubFactory.StartAsync(dispatch: true, allowPrivateNetworks: false);
        using var api = hub.Api();
        var id = await CreateProfileAsync(api, "https://erp.example.com/in", "guarded");
        // Saved with a public name that now resolves to this machine (DNS changed since).
        var url = $"http://localhost:{receiver.BaseUri.Port}/in";
        await hub.WithDbAsync(async db =>
        {
            var profile = await db.ExportProfiles.SingleAsync(p => p.Id == id);
            profile.PostbackUrl = url;
            return await db.SaveChangesAsync();
        });

        await PostBatchAsync(api, "ssrf", 720_000, 8);

        await WaitUntilAsync(async () => (await ListDeliveriesAsync(api, "failed")).Count == 8, TimeSpan.FromSeconds(60),
            () => $"deliveries: {string.Join(", ", ListDeliveriesAsync(api).Result.Select(d => $"{d.Status}/{d.Attempts}/{d.LastError}"))}");
        foreach (var row in await ListDeliveriesAsync(api))
        {
            Assert.Equal(1, row.Attempts);
            Assert.Contains("private or loopback", row.LastError, StringComparison.Ordinal);
        }
        Assert.Empty(receiver.Received);
        Assert.Equal((0, null), hub.Services.GetRequiredService<EndpointHealth>().Snapshot(Endpoints.Of(url)));
    }

    [Fact]
    public void A_held_receiver_is_described_with_its_hold_and_failures()
    {
        var health = new EndpointHealth(failureThreshold: 5, maxInFlightPerEndpoint: 10);
        var now = new DateTimeOffset(2026, 12, 2, 12, 4, 8, TimeSpan.Zero);
        Assert.Null(health.HoldReason("http://crm.example.com:80", now));
        for (var i = 0; i < 5; i++)
        {
            var admitted = health.Admit("http://crm.example.com:80", now);
            health.Report("http://crm.example.com:80", admitted, succeeded: false, now);
        }
        Assert.Equal("receiver on hold until 12:04:10 after 5 failures", health.HoldReason("http://crm.example.com:80", now));
        Assert.Equal([("http://crm.example.com:80", "receiver on hold until 12:04:10 after 5 failures")], health.Held(now));
        Assert.Null(health.HoldReason("http://crm.example.com:80", now.AddSeconds(3)));
    }
}
