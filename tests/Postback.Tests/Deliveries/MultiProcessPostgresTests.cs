using System.Collections.Concurrent;
using System.Globalization;
using Npgsql;
using Postback.Tests.Support;
using Xunit.Abstractions;

namespace Postback.Tests.Deliveries;

/// Two hub processes sharing one PostgreSQL database share one queue: every delivery goes out,
/// and, while both stay up and no lease runs out, exactly once.
[Collection(HubProcessCollection.Name)]
public sealed class MultiProcessPostgresTests(ITestOutputHelper output)
{
    private const int Events = 5_000;
    private const int BatchSize = 500;

    // The lease is far longer than the whole run, so a delivery sent twice can only be two
    // processes claiming the same row: a real bug, not an expired lease.
    private static readonly IReadOnlyDictionary<string, string?> Settings = new Dictionary<string, string?>
    {
        ["Postback:Delivery:LeaseSeconds"] = "120",
        ["Postback:Delivery:PollMilliseconds"] = "100",
        ["Postback:Delivery:FirstRetrySeconds"] = "0.2",
        ["Postback:Outbound:TimeoutSeconds"] = "10",
    };

    [Fact]
    public async Task Two_hub_processes_on_one_database_deliver_every_event_exactly_once()
    {
        var connectionString = await PostgresServer.CreateDatabaseAsync("pb_multi");
        var directory1 = DeliveryScenario.TempDirectory("multi-1");
        var directory2 = DeliveryScenario.TempDirectory("multi-2");
        HubProcess? hub1 = null;
        HubProcess? hub2 = null;
        using var sampling = new CancellationTokenSource();
        Task? sampler = null;
        try
        {
            await using var receiver = await Receiver.StartAsync();
            var receiverPort = receiver.BaseUri.Port;

            // The first process migrates the new database; the second starts on a current schema.
            hub1 = await HubProcess.StartPostgresAsync(connectionString, directory1, "hub-1", Settings);
            hub2 = await HubProcess.StartPostgresAsync(connectionString, directory2, "hub-2", Settings);
            var hubs = new[] { hub1, hub2 };
            output.WriteLine($"hub-1 pid {hub1.Pid}, hub-2 pid {hub2.Pid}, receiver port {receiverPort}");

            using (var api = hub1.Api())
            {
                await DeliveryScenario.CreateProfileAsync(api, receiver.Url("/hook"), "multi-process");
            }

            // Evidence of who sends: connections each process holds to the receiver, and the
            // process ids in the lease owners of rows in flight.
            var connected = new ConcurrentDictionary<string, int>();
            var leasedBy = new ConcurrentDictionary<int, int>();
            sampler = Task.Run(() => SampleAsync(hubs, receiverPort, connectionString, connected, leasedBy, sampling.Token));

            // Half the batches through each process, both at once.
            var posting = hubs.Select((hub, h) => Task.Run(async () =>
            {
                using var api = hub.Api();
                var ids = new List<long>();
                for (var batch = h; batch < Events / BatchSize; batch += hubs.Length)
                {
                    ids.AddRange(await DeliveryScenario.PostBatchAsync(api, "multi", 1 + (long)batch * BatchSize, BatchSize));
                }
                return ids;
            })).ToList();
            var scheduled = (await Task.WhenAll(posting)).SelectMany(ids => ids).ToList();
            Assert.Equal(Events, scheduled.Distinct().Count());

            await DeliveryScenario.WaitUntilAsync(
                () => receiver.Received.Count >= Events,
                TimeSpan.FromSeconds(180),
                () => $"the receiver saw {receiver.Received.Count} of {Events} requests\n--- hub-1 ---\n{hub1.Output}\n--- hub-2 ---\n{hub2.Output}",
                pollMilliseconds: 200);
            // A second send of a delivery starts before its outcome is recorded (the process that
            // lost the lease sent before the other claimed it): once every delivery is recorded,
            // any second send has reached the receiver.
            using (var api = hub2.Api())
            {
                var recorded = 0;
                await DeliveryScenario.WaitUntilAsync(
                    async () => (recorded = (await DeliveryScenario.ListDeliveriesAsync(api, "succeeded")).Count) >= Events,
                    TimeSpan.FromSeconds(60),
                    () => $"only {recorded} of {Events} deliveries are recorded succeeded\n{Logs(hubs)}",
                    pollMilliseconds: 500);
            }
            await sampling.CancelAsync();
            await sampler;

            var received = DeliveryScenario.ReceivedIds(receiver);
            var twice = received.GroupBy(i => i).Where(g => g.Count() > 1).Select(g => $"{g.Key} x{g.Count()}").ToList();
            var missing = scheduled.Except(received).OrderBy(i => i).ToList();
            var unknown = received.Except(scheduled).Distinct().OrderBy(i => i).ToList();
            output.WriteLine($"{received.Count} requests, {received.Distinct().Count()} distinct deliveries, {twice.Count} sent more than once, {missing.Count} missing");
            Assert.True(twice.Count == 0, $"{twice.Count} deliveries were sent more than once: {string.Join(", ", twice.Take(50))}\n{Logs(hubs)}");
            Assert.True(missing.Count == 0, $"{missing.Count} deliveries never arrived: {string.Join(", ", missing.Take(50))}\n{Logs(hubs)}");
            Assert.True(unknown.Count == 0, $"the receiver saw deliveries nobody scheduled: {string.Join(", ", unknown.Take(50))}");
            Assert.Equal(Events, received.Count);

            // Every delivery ends succeeded, with exactly one attempt on record.
            using (var api = hub2.Api())
            {
                List<DeliveryScenario.DeliveryRow> succeeded = [];
                await DeliveryScenario.WaitUntilAsync(
                    async () => (succeeded = await DeliveryScenario.ListDeliveriesAsync(api, "succeeded")).Count >= Events,
                    TimeSpan.FromSeconds(60),
                    () => $"only {succeeded.Count} of {Events} deliveries are succeeded\n{Logs(hubs)}",
                    pollMilliseconds: 500);
                Assert.Equal(scheduled.OrderBy(i => i), succeeded.Select(d => d.Id).OrderBy(i => i));
                var retried = succeeded.Where(d => d.Attempts != 1).Select(d => $"{d.Id}: {d.Attempts}").ToList();
                Assert.True(retried.Count == 0, $"deliveries with other than one attempt: {string.Join(", ", retried.Take(50))}");
            }
            var (attempts, repeated) = await AttemptsAsync(connectionString);
            Assert.True(attempts == Events && repeated.Count == 0,
                $"{attempts} attempt rows for {Events} deliveries; deliveries with several: {string.Join(", ", repeated.Take(50))}");

            // Both processes did some of the work.
            output.WriteLine("most connections to the receiver seen at once: " + string.Join(", ", hubs.Select(h => $"{h.Name} {connected.GetValueOrDefault(h.Name)}")));
            output.WriteLine("lease-owner samples by pid: " + string.Join(", ", leasedBy.Select(p => $"{p.Key}: {p.Value}")));
            foreach (var hub in hubs)
            {
                var sent = connected.GetValueOrDefault(hub.Name) > 0 || leasedBy.ContainsKey(hub.Pid);
                Assert.True(sent, $"{hub.Name} (pid {hub.Pid}) was never seen sending: no connection to the receiver, no lease held");
            }

            foreach (var hub in hubs)
            {
                var errors = hub.ErrorLines;
                Assert.True(errors.Count == 0, $"{hub.Name} logged errors:\n{string.Join('\n', errors)}");
            }
            foreach (var hub in hubs)
            {
                var exit = await hub.StopAsync();
                Assert.True(exit == 0, $"{hub.Name} exited with {exit} on SIGTERM.\n--- {hub.Name} ---\n{hub.Output}");
            }
        }
        finally
        {
            await sampling.CancelAsync();
            if (sampler is not null)
            {
                try
                {
                    await sampler;
                }
                catch (Exception e)
                {
                    output.WriteLine("sampler: " + e.Message);
                }
            }
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

    private static string Logs(IEnumerable<HubProcess> hubs) =>
        string.Join('\n', hubs.Select(h => $"--- {h.Name} (pid {h.Pid}) ---\n{h.Output}"));

    private static async Task SampleAsync(
        IReadOnlyList<HubProcess> hubs, int receiverPort, string connectionString,
        ConcurrentDictionary<string, int> connected, ConcurrentDictionary<int, int> leasedBy, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        while (!ct.IsCancellationRequested)
        {
            foreach (var hub in hubs)
            {
                if (hub.ConnectionsTo(receiverPort) is { } count)
                {
                    connected.AddOrUpdate(hub.Name, count, (_, old) => Math.Max(old, count));
                }
            }
            try
            {
                // Owner: "<machine>:<pid>:<guid>".
                await using var command = new NpgsqlCommand(
                    """SELECT "LeaseOwner", COUNT(*) FROM deliveries WHERE "LeaseOwner" IS NOT NULL GROUP BY 1""", connection);
                await using var reader = await command.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    var parts = reader.GetString(0).Split(':');
                    if (parts.Length >= 3 && int.TryParse(parts[^2], NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid))
                    {
                        leasedBy.AddOrUpdate(pid, 1, (_, old) => old + 1);
                    }
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
            try
            {
                await Task.Delay(50, ct);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static async Task<(long Attempts, List<string> Repeated)> AttemptsAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        long attempts;
        await using (var count = new NpgsqlCommand("SELECT COUNT(*) FROM delivery_attempts", connection))
        {
            attempts = (long)(await count.ExecuteScalarAsync())!;
        }
        var repeated = new List<string>();
        await using var command = new NpgsqlCommand(
            """SELECT "DeliveryId", COUNT(*) FROM delivery_attempts GROUP BY 1 HAVING COUNT(*) > 1 ORDER BY 1 LIMIT 100""", connection);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            repeated.Add($"{reader.GetInt64(0)} x{reader.GetInt64(1)}");
        }
        return (attempts, repeated);
    }
}
