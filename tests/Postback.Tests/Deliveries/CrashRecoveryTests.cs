using Microsoft.Data.Sqlite;
using Postback.Tests.Support;
using Xunit.Abstractions;

namespace Postback.Tests.Deliveries;

/// The hub as a real OS process on a SQLite file, stopped mid-run (SIGKILL: a crash; SIGTERM: a
/// graceful stop) and started again on the same file. Whatever happened to the first process,
/// every scheduled delivery reaches the receiver at least once and ends succeeded.
[Collection(HubProcessCollection.Name)]
public sealed class CrashRecoveryTests(ITestOutputHelper output)
{
    private const int Events = 300;
    private const int BatchSize = 100;
    // Few sends at once and a slow receiver, so the run lasts seconds and the stop lands mid-run
    // with requests in flight (300 deliveries / 20 at a time * 300 ms >= 4.5 s).
    private static readonly TimeSpan ReceiverDelay = TimeSpan.FromMilliseconds(300);

    private static readonly IReadOnlyDictionary<string, string?> Settings = new Dictionary<string, string?>
    {
        ["Postback:Delivery:MaxInFlight"] = "20",
        ["Postback:Delivery:LeaseSeconds"] = "3",
        ["Postback:Delivery:PollMilliseconds"] = "100",
        ["Postback:Delivery:FirstRetrySeconds"] = "0.2",
        ["Postback:Outbound:TimeoutSeconds"] = "2",
    };

    [Fact]
    public async Task Killed_hub_process_leaves_no_delivery_behind_after_a_restart()
    {
        var dataDirectory = DeliveryScenario.TempDirectory("crash");
        HubProcess? first = null;
        HubProcess? second = null;
        try
        {
            await using var receiver = await Receiver.StartAsync();
            receiver.Delay = ReceiverDelay;

            first = await HubProcess.StartSqliteAsync(dataDirectory, "hub-1", Settings);
            var scheduled = await ScheduleAsync(first, receiver);

            // Some requests have arrived, most have not: kill -9.
            await DeliveryScenario.WaitUntilAsync(
                () => DeliveryScenario.ReceivedIds(receiver).Distinct().Count() >= 60,
                TimeSpan.FromSeconds(60),
                () => $"hub-1 should have sent 60 deliveries; the receiver saw {receiver.Received.Count}.\n--- hub-1 ---\n{first.Output}");
            first.Kill();
            await DeliveryScenario.WaitForQuietAsync(receiver, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));
            var beforeCrash = DeliveryScenario.ReceivedIds(receiver);
            var seenBeforeCrash = beforeCrash.ToHashSet();
            output.WriteLine($"hub-1 killed after the receiver saw {beforeCrash.Count} requests ({seenBeforeCrash.Count} deliveries) of {Events}");
            Assert.True(seenBeforeCrash.Count < Events,
                $"the crash must land mid-run, but all {Events} deliveries had already arrived; the test proves nothing");
            AssertNoErrors(first);
            output.WriteLine("database at the crash: " + DescribeSqlite(dataDirectory));

            second = await HubProcess.StartSqliteAsync(dataDirectory, "hub-2", Settings);
            using var api = second.Api();
            await WaitForAllAsync(receiver, scheduled, second, api);

            var received = DeliveryScenario.ReceivedIds(receiver);
            Assert.Equal(scheduled.OrderBy(i => i), received.Distinct().OrderBy(i => i));

            // At least once, and a second send only for what hub-1 may have had in flight: a
            // delivery hub-1 never sent goes out exactly once, and nothing goes out three times.
            var counts = received.GroupBy(i => i).ToDictionary(g => g.Key, g => g.Count());
            var twice = counts.Where(c => c.Value > 1).Select(c => c.Key).OrderBy(i => i).ToList();
            output.WriteLine($"{received.Count} requests for {counts.Count} deliveries; sent twice: {twice.Count} [{string.Join(", ", twice)}]");
            Assert.True(counts.Values.All(c => c <= 2), "a delivery was sent more than twice: " +
                string.Join(", ", counts.Where(c => c.Value > 2).Select(c => $"{c.Key} x{c.Value}")));
            var unexpected = twice.Where(id => !seenBeforeCrash.Contains(id)).ToList();
            Assert.True(unexpected.Count == 0,
                $"deliveries hub-1 never sent were sent twice after the restart: {string.Join(", ", unexpected)}\n--- hub-2 ---\n{second.Output}");

            AssertNoErrors(second);
            var exit = await second.StopAsync();
            Assert.True(exit == 0, $"hub-2 exited with {exit} on SIGTERM.\n--- hub-2 ---\n{second.Output}");
        }
        finally
        {
            await DisposeAsync(first, second);
            DeliveryScenario.DeleteDirectory(dataDirectory);
        }
    }

    [Fact]
    public async Task Gracefully_stopped_hub_process_leaves_no_delivery_behind_after_a_restart()
    {
        var dataDirectory = DeliveryScenario.TempDirectory("graceful");
        HubProcess? first = null;
        HubProcess? second = null;
        try
        {
            await using var receiver = await Receiver.StartAsync();
            receiver.Delay = ReceiverDelay;

            first = await HubProcess.StartSqliteAsync(dataDirectory, "hub-1", Settings);
            var scheduled = await ScheduleAsync(first, receiver);

            await DeliveryScenario.WaitUntilAsync(
                () => DeliveryScenario.ReceivedIds(receiver).Distinct().Count() >= 60,
                TimeSpan.FromSeconds(60),
                () => $"hub-1 should have sent 60 deliveries; the receiver saw {receiver.Received.Count}.\n--- hub-1 ---\n{first.Output}");
            var exit = await first.StopAsync(TimeSpan.FromSeconds(60));
            var beforeStop = DeliveryScenario.ReceivedIds(receiver);
            output.WriteLine($"hub-1 stopped (exit code {exit}) after the receiver saw {beforeStop.Count} requests ({beforeStop.Distinct().Count()} deliveries) of {Events}");
            Assert.True(exit == 0, $"hub-1 exited with {exit} on SIGTERM.\n--- hub-1 ---\n{first.Output}");
            Assert.True(beforeStop.Distinct().Count() < Events,
                $"the stop must land mid-run, but all {Events} deliveries had already arrived; the test proves nothing");
            AssertNoErrors(first);
            // A graceful stop lets the sends in flight finish and records them, and gives the
            // rest back; what the file holds now is reported for diagnosis.
            output.WriteLine("database after the stop: " + DescribeSqlite(dataDirectory));

            second = await HubProcess.StartSqliteAsync(dataDirectory, "hub-2", Settings);
            using var api = second.Api();
            await WaitForAllAsync(receiver, scheduled, second, api);

            var received = DeliveryScenario.ReceivedIds(receiver);
            Assert.Equal(scheduled.OrderBy(i => i), received.Distinct().OrderBy(i => i));
            // The sends hub-1 had in flight were answered and recorded before it exited, so
            // nothing needed sending again.
            var twice = received.GroupBy(i => i).Where(g => g.Count() > 1).Select(g => $"{g.Key} x{g.Count()}").ToList();
            output.WriteLine($"{received.Count} requests for {received.Distinct().Count()} deliveries; sent more than once: {twice.Count}");
            Assert.True(twice.Count == 0,
                $"after a graceful stop, deliveries were sent more than once: {string.Join(", ", twice)}\n--- hub-1 ---\n{first.Output}\n--- hub-2 ---\n{second.Output}");

            AssertNoErrors(second);
            exit = await second.StopAsync();
            Assert.True(exit == 0, $"hub-2 exited with {exit} on SIGTERM.\n--- hub-2 ---\n{second.Output}");
        }
        finally
        {
            await DisposeAsync(first, second);
            DeliveryScenario.DeleteDirectory(dataDirectory);
        }
    }

    /// A profile pointing at the receiver and 300 new_sale events; returns the delivery ids the
    /// events API reported.
    private static async Task<List<long>> ScheduleAsync(HubProcess hub, Receiver receiver)
    {
        using var api = hub.Api();
        await DeliveryScenario.CreateProfileAsync(api, receiver.Url("/hook"));
        var scheduled = new List<long>();
        for (var i = 0; i < Events; i += BatchSize)
        {
            scheduled.AddRange(await DeliveryScenario.PostBatchAsync(api, "crash", 1 + i, BatchSize));
        }
        Assert.Equal(Events, scheduled.Distinct().Count());
        return scheduled;
    }

    /// Waits until the receiver saw every scheduled delivery and the API lists every one as
    /// succeeded (outcomes are recorded in batches, a moment after the request).
    private async Task WaitForAllAsync(Receiver receiver, List<long> scheduled, HubProcess hub, HttpClient api)
    {
        var expected = scheduled.ToHashSet();
        await DeliveryScenario.WaitUntilAsync(
            () => expected.IsSubsetOf(DeliveryScenario.ReceivedIds(receiver)),
            TimeSpan.FromSeconds(90),
            () =>
            {
                var missing = expected.Except(DeliveryScenario.ReceivedIds(receiver)).OrderBy(i => i).ToList();
                return $"{missing.Count} deliveries never reached the receiver after the restart: [{string.Join(", ", missing.Take(50))}]\n--- {hub.Name} ---\n{hub.Output}";
            });

        List<DeliveryScenario.DeliveryRow> succeeded = [];
        await DeliveryScenario.WaitUntilAsync(
            async () => (succeeded = await DeliveryScenario.ListDeliveriesAsync(api, "succeeded")).Count >= expected.Count,
            TimeSpan.FromSeconds(30),
            () => $"only {succeeded.Count} of {expected.Count} deliveries are succeeded\n--- {hub.Name} ---\n{hub.Output}",
            pollMilliseconds: 250);
        Assert.Equal(expected.OrderBy(i => i), succeeded.Select(d => d.Id).OrderBy(i => i));

        var all = await DeliveryScenario.ListDeliveriesAsync(api);
        var notSucceeded = all.Where(d => d.Status != "succeeded").Select(d => $"{d.Id}: {d.Status} ({d.LastError})").ToList();
        Assert.True(all.Count == expected.Count && notSucceeded.Count == 0,
            $"{all.Count} deliveries, expected {expected.Count}, all succeeded; not succeeded: {string.Join("; ", notSucceeded)}");
        output.WriteLine($"attempts per delivery: {string.Join(", ", succeeded.GroupBy(d => d.Attempts).OrderBy(g => g.Key).Select(g => $"{g.Key} attempt(s): {g.Count()}"))}");
    }

    private void AssertNoErrors(HubProcess hub)
    {
        var errors = hub.ErrorLines;
        Assert.True(errors.Count == 0, $"{hub.Name} logged errors:\n{string.Join('\n', errors)}\n--- {hub.Name} ---\n{hub.Output}");
    }

    /// The delivery rows by status and lease, read straight from the file while no hub runs.
    private static string DescribeSqlite(string dataDirectory)
    {
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = Path.Combine(dataDirectory, "postback.db"),
            Pooling = false,
        };
        using var connection = new SqliteConnection(builder.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT "Status", "LeaseOwner" IS NOT NULL, COUNT(*) FROM deliveries GROUP BY 1, 2 ORDER BY 1, 2
            """;
        using var reader = command.ExecuteReader();
        var parts = new List<string>();
        while (reader.Read())
        {
            parts.Add($"{reader.GetString(0)}{(reader.GetInt64(1) == 1 ? " (leased)" : "")}: {reader.GetInt64(2)}");
        }
        return string.Join(", ", parts);
    }

    private async Task DisposeAsync(params HubProcess?[] hubs)
    {
        foreach (var hub in hubs)
        {
            if (hub is null)
            {
                continue;
            }
            output.WriteLine($"--- {hub.Name} (pid {hub.Pid}) output ---");
            output.WriteLine(hub.Output);
            await hub.DisposeAsync();
        }
    }
}

/// Tests that start hub processes run one class at a time: each drives several processes hard.
[CollectionDefinition(Name)]
public sealed class HubProcessCollection
{
    public const string Name = "hub processes";
}
