using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Postback.Ingest;
using Postback.Orders;
using Postback.Tests.Support;

namespace Postback.Tests.Hardening;

/// Issue 12, finding 3: one bad event must never fail the other events it shares a group
/// commit with.
public sealed class PoisonEventTests
{
    [Fact]
    public async Task An_occurredAt_out_of_range_is_refused_alone_while_concurrent_valid_events_are_stored()
    {
        await using var hub = await HubFactory.StartAsync();
        using var api = hub.Api();
        // A delayed profile: the due time is occurredAt plus the delay, which overflowed for the
        // last representable date and failed the whole group.
        var profile = await api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "Delayed", postbackUrl = "https://erp.example.com/in", exportDelayMinutes = 60,
            mappings = new object[] { new { exportName = "id", field = "orderId" } },
            routes = new[] { new { customerTypes = new[] { "new_sale" }, campaignIds = Array.Empty<string>(), productIds = Array.Empty<string>() } },
        });
        Assert.Equal(201, (int)profile.StatusCode);

        var valid = Enumerable.Range(0, 200).Select(i =>
            api.PostJsonAsync("/api/v1/events", new { eventId = $"poison-ok-{i}", type = "new_sale", order = new { orderId = 990_000 + i } })).ToList();
        var poison = Enumerable.Range(0, 5).Select(i =>
            api.PostJsonAsync("/api/v1/events", new { eventId = $"poison-{i}", type = "new_sale", occurredAt = "9999-12-31T23:59:59Z", order = new { orderId = 991_000 + i } })).ToList();

        var validAnswers = await Task.WhenAll(valid);
        var poisonAnswers = await Task.WhenAll(poison);

        Assert.All(validAnswers, r => Assert.Equal(202, (int)r.StatusCode));
        foreach (var answer in poisonAnswers)
        {
            var reason = await Json.AssertProblemAsync(answer, 400, "occurredAt");
            Assert.Contains("future", reason, StringComparison.Ordinal);
        }
        Assert.Equal(200, await hub.WithDbAsync(db => Task.FromResult(db.OrderEvents.Count(e => e.EventId.StartsWith("poison-ok-")))));
        Assert.Equal(0, await hub.WithDbAsync(db => Task.FromResult(db.OrderEvents.Count(e => e.EventId.StartsWith("poison-") && !e.EventId.StartsWith("poison-ok-")))));
    }

    [Theory]
    [InlineData("1999-12-31T23:59:59Z", "2000")]
    [InlineData("0001-01-01T00:00:00Z", "2000")]
    [InlineData("+2d", "future")]
    public async Task OccurredAt_must_be_from_2000_to_a_day_ahead(string occurredAt, string named)
    {
        await using var hub = await HubFactory.StartAsync();
        using var api = hub.Api();
        var value = occurredAt == "+2d" ? DateTimeOffset.UtcNow.AddDays(2).ToString("O", CultureInfo.InvariantCulture) : occurredAt;

        var answer = await api.PostJsonAsync("/api/v1/events", new { type = "new_sale", occurredAt = value, order = new { orderId = 992_001 } });

        Assert.Contains(named, await Json.AssertProblemAsync(answer, 400, "occurredAt"), StringComparison.Ordinal);
        var batch = await api.PostJsonAsync("/api/v1/events/batch", new { events = new[] { new { type = "new_sale", occurredAt = value, order = new { orderId = 992_002 } } } });
        await Json.AssertProblemAsync(batch, 400, "events[0].occurredAt");
        // Within range is fine: a clock a few hours ahead of ours, and an old import.
        var ahead = await api.PostJsonAsync("/api/v1/events", new { type = "new_sale", occurredAt = DateTimeOffset.UtcNow.AddHours(3).ToString("O", CultureInfo.InvariantCulture), order = new { orderId = 992_003 } });
        Assert.Equal(202, (int)ahead.StatusCode);
        var old = await api.PostJsonAsync("/api/v1/events", new { type = "new_sale", occurredAt = "2000-01-01T00:00:00Z", order = new { orderId = 992_004 } });
        Assert.Equal(202, (int)old.StatusCode);
    }

    [Fact]
    public async Task A_request_whose_store_fails_is_split_off_and_the_rest_of_its_group_is_committed()
    {
        // Whatever makes one request's store throw (a bug, a value a database refuses), the
        // requests that shared its group are stored on their own.
        var stored = new List<long>();
        var gate = new TaskCompletionSource();
        await using var commit = new GroupCommit(async (organizationId, events) =>
        {
            await gate.Task;
            if (events.Any(e => e.Order.OrderId == 13))
            {
                throw new InvalidOperationException("poisoned");
            }
            lock (stored)
            {
                stored.AddRange(events.Select(e => e.Order.OrderId));
            }
            return events.Select(e => new IngestedEvent(new Postback.Orders.OrderEvent { EventId = e.EventId!, Type = e.Type, OrderId = e.Order.OrderId }, false, [])).ToList();
        }, NullLogger<GroupCommit>.Instance);
        await commit.StartAsync(CancellationToken.None);

        var requests = Enumerable.Range(1, 40)
            .Select(i => commit.IngestAsync(1, [new IncomingEvent($"e{i}", "new_sale", null, new OrderData { OrderId = i, Fields = new Dictionary<string, string>(), Items = [] })], CancellationToken.None))
            .ToList();
        gate.SetResult();

        for (var i = 1; i <= 40; i++)
        {
            if (i == 13)
            {
                await Assert.ThrowsAsync<InvalidOperationException>(() => requests[i - 1]);
            }
            else
            {
                Assert.Equal(i, (await requests[i - 1])[0].Event.OrderId);
            }
        }
        Assert.Equal(Enumerable.Range(1, 40).Where(i => i != 13).Select(i => (long)i), stored.Order());
    }
}
