using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Postback.Bench;

/// One hub count's figures on PostgreSQL: N hub processes on one database sharing the
/// machine, ingest split between them, each claiming deliveries under its own leases.
public sealed record ScaleResult(
    int Hubs, int Events, long Deliveries, bool Complete, double Seconds, double IngestRate, double RawRate,
    double HubCpuSeconds, double PostgresCpuSeconds, double MachineBusy, int Duplicates)
{
    /// PostgreSQL's own account of the phase (null when psql is not at hand).
    public PgSnapshot? Postgres { get; init; }

    public double Rate => Deliveries / Seconds;

    public double Ratio => Rate / RawRate;

    public double HubMsPerDelivery => HubCpuSeconds * 1000 / Deliveries;

    public double PostgresMsPerDelivery => PostgresCpuSeconds * 1000 / Deliveries;
}

/// The path to many nodes, checked where this machine allows (docs/scaling.md): the same
/// workload through 1 and through 2 hub processes on one PostgreSQL server, each on a fresh
/// database, with the same total CPU budget (this machine's cores: one hub may use them all;
/// two hubs are told they have half each with DOTNET_PROCESSOR_COUNT, so their thread pools
/// and server GC heaps are sized as they would be on half the machine).
public sealed partial class StorageRun
{
    public static async Task<IReadOnlyList<ScaleResult>> ScaleOutAsync(BenchOptions options, string workDir)
    {
        var results = new List<ScaleResult>();
        foreach (var hubs in new[] { 1, 2 })
        {
            var run = new StorageRun(options, "postgres", Path.Combine(workDir, $"scale-{hubs}"));
            results.Add(await run.ScaleAsync(hubs));
        }
        return results;
    }

    private async Task<ScaleResult> ScaleAsync(int count)
    {
        Directory.CreateDirectory(dir);
        var database = $"postback_scale_{count}";
        var connection = DatabasePattern().Replace(options.Postgres!, "Database=" + database);
        var apiKey = "pb_bench_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var workload = options.Workload;
        var events = options.Events;
        var capacity = (events * 2 + 20_000) * workload.DeliveriesPerEvent;
        await using var receiver = await Receiver.StartAsync(capacity);
        string ProfileUrl(int i) => new Uri(receiver.Endpoints[i % receiver.Endpoints.Count], "postback").ToString();

        var hubs = new List<HubProcess>();
        try
        {
            for (var i = 0; i < count; i++)
            {
                var env = new Dictionary<string, string>(StringComparer.Ordinal)
                {
                    ["ASPNETCORE_ENVIRONMENT"] = "Production",
                    ["Logging__LogLevel__Default"] = "Warning",
                    ["Postback__BootstrapApiKey"] = apiKey,
                    ["Postback__Outbound__AllowPrivateNetworks"] = "true",
                    ["Postback__Storage__Provider"] = "postgres",
                    ["Postback__Storage__DataDirectory"] = Path.Combine(dir, $"data-{i}"),
                    ["ConnectionStrings__Postback"] = connection,
                };
                if (count > 1)
                {
                    env["DOTNET_PROCESSOR_COUNT"] = Math.Max(1, Environment.ProcessorCount / count).ToString(CultureInfo.InvariantCulture);
                }
                foreach (var (k, v) in options.HubEnvironment)
                {
                    env[k] = v;
                }
                // One at a time: the first migrates the fresh database, the next finds it done.
                hubs.Add(await HubProcess.StartAsync(options.HubDll, env, Path.Combine(dir, $"hub-{i}.log"), Path.Combine(dir, $"hub-{i}.pid"), TimeSpan.FromSeconds(120)));
            }
            Log($"scale-out: {count} hub process(es) on {database}: pids {string.Join(", ", hubs.Select(h => h.Pid))}");

            var apis = hubs.Select(h => new HubApi(h.BaseUri, apiKey, Math.Max(2, options.IngestConnections / count))).ToList();
            try
            {
                using var setup = new CancellationTokenSource(TimeSpan.FromSeconds(60));
                await apis[0].PostJsonAsync("campaigns", new JsonObject
                {
                    ["campaignId"] = "259",
                    ["name"] = "Bench Lander",
                    ["products"] = new JsonArray(
                        new JsonObject { ["productId"] = "12", ["sku"] = "TRIAL-1", ["name"] = "Trial bottle", ["price"] = 4.95 },
                        new JsonObject { ["productId"] = "14", ["sku"] = "SUB-30", ["name"] = "Monthly supply", ["price"] = 49.95 }),
                }, setup.Token);
                var samples = new List<RawRequest>();
                foreach (var (p, index) in workload.Profiles.Select((p, i) => (p, i)))
                {
                    var profile = await apis[0].PostJsonAsync("export-profiles", new JsonObject
                    {
                        ["name"] = p.Name,
                        ["postbackUrl"] = ProfileUrl(index),
                        ["exportDelayMinutes"] = 0,
                        ["mappings"] = p.Mappings.DeepClone(),
                        ["routes"] = new JsonArray(new JsonObject { ["customerTypes"] = new JsonArray("new_sale") }),
                    }, setup.Token);
                    var preview = await apis[0].PostJsonAsync($"export-profiles/{profile["id"]}/preview",
                        new JsonObject { ["order"] = workload.Order(ThroughputPhase * Receiver.PhaseSpan + 1, Stopwatch.GetTimestamp()) }, setup.Token);
                    samples.Add(RawRequest.From(preview["request"]!));
                }

                // Warm every hub (the profile cache of each fills on its first claim).
                long expected = 0;
                for (var round = 0; round < options.WarmupRounds; round++)
                {
                    var warm = await SplitIngestAsync(apis, WarmupPhase, "warm-", (long)round * options.Warmup, options.Warmup);
                    expected += warm.Deliveries;
                    await WaitDeliveredAsync(receiver, hubs[0], WarmupPhase, expected, "scale-out warm-up");
                }

                var raw = await RawCeilingAsync(receiver, samples, options.Events, options.RawConnections, hubs[0]);
                Log($"scale-out: {count} hub(s): raw ceiling {raw.Rate:N0} requests/s");

                var stats0 = await PgStats.TakeAsync(connection);
                var cpu0 = hubs.Sum(h => Proc.CpuSeconds(h.Pid) ?? 0);
                var pg0 = Proc.CpuSecondsOf("postgres");
                var machine0 = Proc.ReadMachine();
                var ingest = await SplitIngestAsync(apis, ThroughputPhase, "tp-", 0, events);
                var complete = await WaitDeliveredAsync(receiver, hubs[0], ThroughputPhase, ingest.Deliveries, "scale-out throughput");
                var cpu1 = hubs.Sum(h => Proc.CpuSeconds(h.Pid) ?? 0);
                var pg1 = Proc.CpuSecondsOf("postgres");
                var machine1 = Proc.ReadMachine();
                var stats1 = await PgStats.TakeAsync(connection);
                var arrivals = receiver.Arrivals(ThroughputPhase);
                var distinct = arrivals.Select(a => (a.OrderId, a.Profile)).Distinct().Count();
                var seconds = Stopwatch.GetElapsedTime(ingest.Start, arrivals.Max(a => a.ReceivedAt)).TotalSeconds;
                var result = new ScaleResult(count, events, distinct, complete && distinct >= ingest.Deliveries, seconds, ingest.Rate, raw.Rate,
                    cpu1 - cpu0, pg1 - pg0, (double)(machine1.Busy - machine0.Busy) / Math.Max(1, machine1.Total - machine0.Total),
                    arrivals.Count - distinct)
                {
                    Postgres = stats1 is { } b && stats0 is { } a ? b.Minus(a) : null,
                };
                Log($"scale-out: {count} hub(s): {result.Rate:N0} deliveries/s ({result.Ratio:P1} of raw); hub CPU {result.HubMsPerDelivery:0.000} ms and PostgreSQL CPU {result.PostgresMsPerDelivery:0.000} ms per delivery");
                return result;
            }
            finally
            {
                foreach (var api in apis)
                {
                    api.Dispose();
                }
            }
        }
        finally
        {
            foreach (var hub in hubs)
            {
                await hub.StopAsync(TimeSpan.FromSeconds(30));
                await hub.DisposeAsync();
            }
        }
    }

    // Each hub takes its share of the events over its own connections, all at once.
    private async Task<IngestStats> SplitIngestAsync(IReadOnlyList<HubApi> apis, int phase, string prefix, long offset, int count)
    {
        var share = count / apis.Count;
        var start = Stopwatch.GetTimestamp();
        var parts = await Task.WhenAll(apis.Select((api, i) => IngestAsync(api, phase, "new_sale", prefix, offset + (long)i * share,
            i == apis.Count - 1 ? count - share * (apis.Count - 1) : share, options.Batch, Math.Max(1, options.IngestConnections / apis.Count),
            options.Workload.DeliveriesPerEvent)));
        return new IngestStats(start, Stopwatch.GetTimestamp(), count, parts.Sum(p => p.Deliveries));
    }

    [GeneratedRegex("Database=[^;]*", RegexOptions.IgnoreCase)]
    private static partial Regex DatabasePattern();

    public static string ScaleTable(IReadOnlyList<ScaleResult> results)
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine("== scale-out: hub processes on one PostgreSQL (same machine, same total CPU) ==");
        sb.AppendLine("   hubs   events   deliveries/s   raw ceiling/s   ratio   hub CPU ms/delivery   postgres CPU ms/delivery   machine busy   complete");
        foreach (var r in results)
        {
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"   {r.Hubs,4} {r.Events,8:N0} {r.Rate,14:N0} {r.RawRate,15:N0}  {r.Ratio,6:P1} {r.HubMsPerDelivery,21:0.000} {r.PostgresMsPerDelivery,26:0.000}   {r.MachineBusy,12:P0}   {(r.Complete ? "yes" : "NO")}{(r.Duplicates > 0 ? $" ({r.Duplicates} repeats)" : "")}"));
        }
        foreach (var r in results.Where(r => r.Postgres is not null))
        {
            var p = r.Postgres!;
            double Per(long v) => (double)v / r.Deliveries;
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"   {r.Hubs} hub(s), PostgreSQL per delivery: {Per(p.WalBytes):N0} WAL bytes ({Per(p.WalRecords):0.0} records), {Per(p.Commits):0.000} commits, {Per(p.Inserted):0.00} rows inserted, {Per(p.Updated):0.00} updated; {p.Commits / r.Seconds:N0} commits/s, {p.WalBytes / r.Seconds / 1048576:0.0} MiB of WAL/s"));
        }
        return sb.ToString();
    }
}
