using System.Collections.Concurrent;
using System.Globalization;
using Postback.Tests.Support;
using Xunit.Abstractions;

namespace Postback.Tests.Deliveries;

/// Ordering per order with two hub processes sharing one PostgreSQL database, one of them
/// killed (SIGKILL) mid-run: for every order the receiver sees its deliveries in the order of
/// their events, never two different deliveries of one order at once, and all of them arrive.
/// The receiver takes its time and sometimes answers 500, so deliveries retry and overlap in
/// time across orders while each order's must wait.
[Collection(HubProcessCollection.Name)]
public sealed class OrderingProcessTests(ITestOutputHelper output)
{
    private const int Orders = 60;
    private static readonly string[] Types = ["new_sale", "upsell", "recurring_order", "fulfillment_shipped"];

    private static readonly IReadOnlyDictionary<string, string?> Settings = new Dictionary<string, string?>
    {
        // Short, so the killed process's leases run out and the survivor takes its work over.
        ["Postback:Delivery:LeaseSeconds"] = "3",
        ["Postback:Delivery:PollMilliseconds"] = "100",
        ["Postback:Delivery:FirstRetrySeconds"] = "0.1",
        ["Postback:Delivery:FailureThreshold"] = "1000",
        ["Postback:Outbound:TimeoutSeconds"] = "10",
    };

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Two_processes_keep_each_orders_deliveries_in_order_and_one_at_a_time(bool killOne)
    {
        var connectionString = await PostgresServer.CreateDatabaseAsync("pb_ordered");
        var directory1 = DeliveryScenario.TempDirectory("ordered-1");
        var directory2 = DeliveryScenario.TempDirectory("ordered-2");
        HubProcess? hub1 = null;
        HubProcess? hub2 = null;
        try
        {
            await using var receiver = await Receiver.StartAsync();
            var inFlight = new ConcurrentDictionary<string, int>();
            var together = new ConcurrentQueue<string>();
            var answered = 0;
            receiver.RespondAsync = async (request, ct) =>
            {
                var order = System.Web.HttpUtility.ParseQueryString(request.RawQuery)["order_id"]!;
                if (inFlight.AddOrUpdate(order, 1, (_, n) => n + 1) > 1)
                {
                    together.Enqueue($"order {order}: delivery {request.Header("X-Postback-Delivery-Id")} arrived while another was in flight");
                }
                try
                {
                    await Task.Delay(Random.Shared.Next(5, 40), ct);
                    // Every fourth answer fails: the order's next delivery must wait for the retry.
                    return Interlocked.Increment(ref answered) % 4 == 0 ? (500, "try again") : (200, "OK");
                }
                finally
                {
                    inFlight.AddOrUpdate(order, 0, (_, n) => n - 1);
                }
            };

            hub1 = await HubProcess.StartPostgresAsync(connectionString, directory1, "hub-1", Settings);
            hub2 = await HubProcess.StartPostgresAsync(connectionString, directory2, "hub-2", Settings);
            using (var api = hub1.Api())
            {
                await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/export-profiles", new
                {
                    name = "ordered",
                    postbackUrl = receiver.Url("/hook"),
                    ordering = "perOrder",
                    mappings = new[] { new { exportName = "order_id", field = "orderId" }, new { exportName = "type", field = "customerType" } },
                    routes = new[] { new { customerTypes = Types } },
                }), System.Net.HttpStatusCode.Created);
            }

            // Each order's events one after the other, alternately through either process;
            // the orders all at once.
            var expected = new ConcurrentDictionary<string, List<long>>();
            var posting = Enumerable.Range(0, Orders).Select(i => Task.Run(async () =>
            {
                var orderId = 990_000 + i;
                var ids = new List<long>();
                for (var e = 0; e < Types.Length; e++)
                {
                    using var api = ((i + e) % 2 == 0 ? hub1 : hub2).Api();
                    var accepted = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/events",
                        new { eventId = $"o{orderId}-{e}", type = Types[e], order = new { orderId } }), System.Net.HttpStatusCode.Accepted);
                    ids.Add(accepted["deliveries"]![0]!["id"]!.GetValue<long>());
                }
                expected[orderId.ToString(CultureInfo.InvariantCulture)] = ids;
            })).ToList();

            var all = Orders * Types.Length;
            if (killOne)
            {
                // Mid-run: some deliveries have arrived, most have not.
                await DeliveryScenario.WaitUntilAsync(() => receiver.Received.Count >= all / 5, TimeSpan.FromSeconds(60),
                    () => $"the receiver saw {receiver.Received.Count} requests\n{Logs(hub1, hub2)}");
                hub1.Kill();
                output.WriteLine($"hub-1 killed after {receiver.Received.Count} requests of at least {all}");
            }
            if (killOne)
            {
                // Events still being posted through the killed process are posted again
                // through the survivor (same event ids: stored once).
                foreach (var task in posting)
                {
                    try
                    {
                        await task;
                    }
                    catch (Exception)
                    {
                    }
                }
                await RepostAsync(hub2, expected);
            }
            else
            {
                await Task.WhenAll(posting);
            }
            Assert.Equal(Orders, expected.Count);

            var scheduled = expected.Values.SelectMany(ids => ids).ToHashSet();
            await DeliveryScenario.WaitUntilAsync(() => DeliveryScenario.ReceivedIds(receiver).Where(scheduled.Contains).Distinct().Count() >= all,
                TimeSpan.FromSeconds(180),
                () => $"{DeliveryScenario.ReceivedIds(receiver).Distinct().Count()} of {all} deliveries arrived\n{Logs(hub1, hub2)}", pollMilliseconds: 200);
            using (var api = hub2.Api())
            {
                List<DeliveryScenario.DeliveryRow> succeeded = [];
                await DeliveryScenario.WaitUntilAsync(
                    async () => (succeeded = await DeliveryScenario.ListDeliveriesAsync(api, "succeeded")).Count >= all,
                    TimeSpan.FromSeconds(120), () => $"{succeeded.Count} of {all} deliveries succeeded\n{Logs(hub1, hub2)}", pollMilliseconds: 300);
            }

            Assert.True(together.IsEmpty, string.Join('\n', together.Take(20)));
            var arrivals = receiver.Received
                .Select(r => (Order: System.Web.HttpUtility.ParseQueryString(r.RawQuery)["order_id"]!, Id: long.Parse(r.Header("X-Postback-Delivery-Id")!, CultureInfo.InvariantCulture)))
                .GroupBy(a => a.Order).ToDictionary(g => g.Key, g => g.Select(a => a.Id).ToList());
            foreach (var (order, ids) in expected)
            {
                // A delivery may arrive again (a retry, or a send the killed process never
                // recorded), but never after a later one of its order.
                var seen = arrivals[order];
                var firsts = seen.Distinct().ToList();
                Assert.True(firsts.SequenceEqual(ids), $"order {order}: expected {string.Join(", ", ids)}, arrived {string.Join(", ", seen)}");
                for (var i = 1; i < seen.Count; i++)
                {
                    Assert.True(ids.IndexOf(seen[i]) >= ids.IndexOf(seen[i - 1]), $"order {order} went back: arrived {string.Join(", ", seen)}");
                }
            }
            output.WriteLine($"{receiver.Received.Count} requests for {all} deliveries of {Orders} orders");

            Assert.True(hub2.ErrorLines.Count == 0, $"hub-2 logged errors:\n{string.Join('\n', hub2.ErrorLines)}");
            if (!killOne)
            {
                Assert.True(hub1.ErrorLines.Count == 0, $"hub-1 logged errors:\n{string.Join('\n', hub1.ErrorLines)}");
            }
        }
        finally
        {
            foreach (var hub in new[] { hub1, hub2 })
            {
                if (hub is not null)
                {
                    output.WriteLine($"--- {hub.Name} (pid {hub.Pid}) output ---");
                    output.WriteLine(hub.Output);
                    await hub.DisposeAsync();
                }
            }
            DeliveryScenario.DeleteDirectory(directory1);
            DeliveryScenario.DeleteDirectory(directory2);
        }
    }

    // After the kill: every order's events, again, in order, through the survivor. Those stored
    // before are duplicates (and say which deliveries they scheduled); the rest are new.
    private static async Task RepostAsync(HubProcess hub, ConcurrentDictionary<string, List<long>> expected)
    {
        using var api = hub.Api();
        for (var i = 0; i < Orders; i++)
        {
            var orderId = 990_000 + i;
            var ids = new List<long>();
            for (var e = 0; e < Types.Length; e++)
            {
                // 202 for an event stored now, 200 for one stored before the kill.
                var response = await api.PostJsonAsync("/api/v1/events", new { eventId = $"o{orderId}-{e}", type = Types[e], order = new { orderId } });
                var text = await response.Content.ReadAsStringAsync();
                Assert.True((int)response.StatusCode is 200 or 202, $"reposting answered {(int)response.StatusCode}: {text}");
                ids.Add(System.Text.Json.Nodes.JsonNode.Parse(text)!["deliveries"]![0]!["id"]!.GetValue<long>());
            }
            expected[orderId.ToString(CultureInfo.InvariantCulture)] = ids;
        }
    }

    private static string Logs(params HubProcess?[] hubs) =>
        string.Join('\n', hubs.Where(h => h is not null).Select(h => $"--- {h!.Name} (pid {h.Pid}) ---\n{h.Output}"));
}
