using Microsoft.EntityFrameworkCore;
using Postback.Orders;
using Postback.Tests.Support;

namespace Postback.Tests.Orders;

/// Concurrent requests share commits; each still gets its own answer.
public sealed class GroupCommitTests(TwoTenantHub fixture) : IClassFixture<TwoTenantHub>
{
    [Fact]
    public async Task Concurrent_requests_are_each_answered_and_a_conflict_refuses_only_its_own_request()
    {
        using var api = fixture.Hub.Api();
        using var other = fixture.Hub.Api(fixture.OtherKey);
        var singles = Enumerable.Range(0, 60).Select(i =>
            api.PostJsonAsync("/api/v1/events", new { eventId = $"gc-{i}", type = "new_sale", order = new { orderId = 880_000 + i } }));
        var batch = api.PostJsonAsync("/api/v1/events/batch", new
        {
            events = Enumerable.Range(0, 20).Select(i => new { eventId = $"gc-batch-{i}", type = "partial", order = new { orderId = 881_000 + i } }),
        });
        // The same event id for two different orders, sent at once: one wins, the other is 409.
        var rivals = new[]
        {
            api.PostJsonAsync("/api/v1/events", new { eventId = "gc-rival", type = "new_sale", order = new { orderId = 882_001 } }),
            api.PostJsonAsync("/api/v1/events", new { eventId = "gc-rival", type = "new_sale", order = new { orderId = 882_002 } }),
        };
        // Another tenant's events in the same moment land in its own organization.
        var foreign = Enumerable.Range(0, 10).Select(i =>
            other.PostJsonAsync("/api/v1/events", new { eventId = $"gc-{i}", type = "new_sale", order = new { orderId = 880_000 + i } }));

        var singleAnswers = await Task.WhenAll(singles);
        var batchAnswer = await batch;
        var rivalAnswers = await Task.WhenAll(rivals);
        var foreignAnswers = await Task.WhenAll(foreign);

        Assert.All(singleAnswers, r => Assert.Equal(202, (int)r.StatusCode));
        for (var i = 0; i < singleAnswers.Length; i++)
        {
            var body = await Json.ReadAsync(singleAnswers[i]);
            Assert.Equal($"gc-{i}", body["eventId"]!.GetValue<string>());
            Assert.Equal(880_000 + i, body["orderId"]!.GetValue<long>());
        }
        Assert.Equal(202, (int)batchAnswer.StatusCode);
        var batchEvents = (await Json.ReadAsync(batchAnswer))["events"]!.AsArray();
        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"gc-batch-{i}"), batchEvents.Select(e => e!["eventId"]!.GetValue<string>()));
        Assert.Equal([202, 409], rivalAnswers.Select(r => (int)r.StatusCode).Order());
        Assert.All(foreignAnswers, r => Assert.Equal(202, (int)r.StatusCode));

        var stored = await fixture.Hub.WithDbAsync(db => db.OrderEvents.Where(e => e.EventId.StartsWith("gc-")).GroupBy(e => e.OrganizationId).Select(g => g.Count()).ToListAsync());
        Assert.Equal([81, 10], stored.OrderDescending());
        Assert.Equal(1, await fixture.Hub.WithDbAsync(db => db.Orders.CountAsync(o => o.OrderId == 882_001 || o.OrderId == 882_002)));
    }

    [Fact]
    public async Task Concurrent_events_for_one_order_all_merge_and_a_repeated_event_is_stored_once()
    {
        using var api = fixture.Hub.Api();
        // Two groups can be in progress at once; events that touch the same order (or repeat an
        // event id) must still see each other's writes.
        var merges = Enumerable.Range(0, 40).Select(i => api.PostJsonAsync("/api/v1/events", new Dictionary<string, object>
        {
            ["eventId"] = $"pipe-merge-{i}",
            ["type"] = "upsell",
            ["order"] = new Dictionary<string, object> { ["orderId"] = 883_000, [$"note{i}"] = $"value {i}" },
        }));
        var repeats = Enumerable.Range(0, 20).Select(_ =>
            api.PostJsonAsync("/api/v1/events", new { eventId = "pipe-repeat", type = "new_sale", order = new { orderId = 884_000 } }));

        var mergeAnswers = await Task.WhenAll(merges);
        var repeatAnswers = await Task.WhenAll(repeats);

        Assert.All(mergeAnswers, r => Assert.Equal(202, (int)r.StatusCode));
        // The first is stored (202); the others find it and answer "duplicate" (200).
        Assert.Equal([200, 202], repeatAnswers.Select(r => (int)r.StatusCode).Distinct().Order());
        Assert.Single(repeatAnswers, r => (int)r.StatusCode == 202);
        var order = await Json.ReadOkAsync(await api.GetAsync("/api/v1/orders/883000"));
        var data = order["order"]?.AsObject() ?? order;
        for (var i = 0; i < 40; i++)
        {
            Assert.Equal($"value {i}", data[$"note{i}"]?.GetValue<string>());
        }
        Assert.Equal(40, await fixture.Hub.WithDbAsync(db => db.OrderEvents.CountAsync(e => e.OrderId == 883_000)));
        Assert.Equal(1, await fixture.Hub.WithDbAsync(db => db.OrderEvents.CountAsync(e => e.EventId == "pipe-repeat")));
        Assert.Equal(1, await fixture.Hub.WithDbAsync(db => db.Orders.CountAsync(o => o.OrderId == 884_000)));
    }
}
