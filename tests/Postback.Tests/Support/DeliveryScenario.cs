using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

namespace Postback.Tests.Support;

/// Steps the delivery-engine tests share: a profile that fires for every new sale, batches of
/// events, the deliveries the API lists, and what a receiver saw.
public static class DeliveryScenario
{
    public sealed record DeliveryRow(long Id, string Status, int Attempts, bool InFlight, string? LastError);

    public static async Task<long> CreateProfileAsync(HttpClient api, string postbackUrl, string name = "crash-test")
    {
        var response = await api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name,
            postbackUrl,
            exportDelayMinutes = 0,
            mappings = new[] { new { exportName = "order_id", field = "orderId" } },
            routes = new[] { new { customerTypes = new[] { "new_sale" } } },
        });
        var text = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == 201, $"creating the profile answered {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!["id"]!.GetValue<long>();
    }

    /// Posts new_sale events for orders firstOrderId .. firstOrderId+count-1 as one batch and
    /// returns the id of the one delivery each event scheduled.
    public static async Task<List<long>> PostBatchAsync(HttpClient api, string eventPrefix, long firstOrderId, int count)
    {
        var events = Enumerable.Range(0, count).Select(i => new
        {
            eventId = $"{eventPrefix}-{firstOrderId + i}",
            type = "new_sale",
            order = new { orderId = firstOrderId + i },
        }).ToArray();
        var response = await api.PostJsonAsync("/api/v1/events/batch", new { events });
        var text = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == 202, $"posting a batch of {count} answered {(int)response.StatusCode}: {text}");
        var accepted = JsonNode.Parse(text)!["events"]!.AsArray();
        Assert.Equal(count, accepted.Count);
        var ids = new List<long>(count);
        foreach (var e in accepted)
        {
            var deliveries = e!["deliveries"]!.AsArray();
            Assert.True(deliveries.Count == 1, $"event {e["eventId"]} scheduled {deliveries.Count} deliveries, expected 1: {e.ToJsonString()}");
            ids.Add(deliveries[0]!["id"]!.GetValue<long>());
        }
        return ids;
    }

    /// Every delivery of the organization (optionally of one status), newest first, following
    /// the API's pages.
    public static async Task<List<DeliveryRow>> ListDeliveriesAsync(HttpClient api, string? status = null)
    {
        var rows = new List<DeliveryRow>();
        long? before = null;
        for (var page = 0; page < 10_000; page++)
        {
            var query = "/api/v1/deliveries?limit=500"
                + (status is null ? "" : "&status=" + status)
                + (before is null ? "" : "&before=" + before.Value.ToString(CultureInfo.InvariantCulture));
            var response = await api.GetAsync(query);
            var text = await response.Content.ReadAsStringAsync();
            Assert.True((int)response.StatusCode == 200, $"GET {query} answered {(int)response.StatusCode}: {text}");
            var body = JsonNode.Parse(text)!;
            foreach (var item in body["items"]!.AsArray())
            {
                rows.Add(new DeliveryRow(
                    item!["id"]!.GetValue<long>(),
                    item["status"]!.GetValue<string>(),
                    item["attempts"]!.GetValue<int>(),
                    item["inFlight"]!.GetValue<bool>(),
                    item["lastError"]?.GetValue<string>()));
            }
            before = body["nextBefore"]?.GetValue<long?>();
            if (before is null)
            {
                return rows;
            }
        }
        throw new InvalidOperationException("The deliveries list never ended.");
    }

    /// The delivery id of every request the receiver saw, in arrival order (one per request,
    /// so a delivery sent twice appears twice). Checks that both id headers agree.
    public static List<long> ReceivedIds(Receiver receiver)
    {
        var ids = new List<long>();
        foreach (var request in receiver.Received)
        {
            var header = request.Header("X-Postback-Delivery-Id");
            Assert.True(header is not null, $"a request without X-Postback-Delivery-Id: {request.Method} {request.Path}{request.RawQuery}");
            var id = long.Parse(header!, CultureInfo.InvariantCulture);
            Assert.Equal("dlv_" + header, request.Header("webhook-id"));
            ids.Add(id);
        }
        return ids;
    }

    /// Polls until the condition holds; fails with the description when it does not within the timeout.
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<string> describe, int pollMilliseconds = 100)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (await condition())
            {
                return;
            }
            if (clock.Elapsed > timeout)
            {
                Assert.Fail($"not reached within {timeout.TotalSeconds:0} s: {describe()}");
            }
            await Task.Delay(pollMilliseconds);
        }
    }

    public static Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, Func<string> describe, int pollMilliseconds = 100) =>
        WaitUntilAsync(() => Task.FromResult(condition()), timeout, describe, pollMilliseconds);

    /// Waits until the receiver has seen no new request for <paramref name="quiet"/>: requests a
    /// killed process had already written to its sockets still arrive after it is gone, and a
    /// count taken at once would miss them.
    public static async Task WaitForQuietAsync(Receiver receiver, TimeSpan quiet, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        var count = receiver.Received.Count;
        var quietSince = DateTime.UtcNow;
        while (DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
            var now = receiver.Received.Count;
            if (now != count)
            {
                count = now;
                quietSince = DateTime.UtcNow;
            }
            else if (DateTime.UtcNow - quietSince >= quiet)
            {
                return;
            }
        }
        throw new TimeoutException($"the receiver kept receiving for {timeout.TotalSeconds} s after the hub stopped");
    }

    public static string TempDirectory(string prefix)
    {
        var path = Path.Combine(Path.GetTempPath(), "postback-tests", $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        return path;
    }

    public static void DeleteDirectory(string path)
    {
        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
