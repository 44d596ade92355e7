using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace Postback.Bench;

public sealed record IngestStats(long Start, long End, int Events, long Deliveries)
{
    public double Seconds => Stopwatch.GetElapsedTime(Start, End).TotalSeconds;

    public double Rate => Events / Seconds;
}

public sealed record ThroughputResult(
    int Events, IngestStats Ingest, long Delivered, int Duplicates, bool Complete,
    double EndToEndSeconds, double FirstDeliverySeconds, double DeliveredAtIngestEnd, double[] Percentiles,
    IReadOnlyList<long> PerSecond, CpuUse Cpu)
{
    public double EndToEndRate => Delivered / EndToEndSeconds;
}

public sealed record LatencyResult(
    int Sent, int Accepted, long Delivered, bool Complete, double AchievedRate, double MaxPacingLagMs,
    double P50, double P90, double P99, double Max, double ApiP50, double ApiP99, double ApiMax, string? FirstError, CpuUse Cpu,
    double[] MaxBySecond);

public sealed record RawResult(int Requests, int Connections, double Seconds, int Errors, CpuUse Cpu)
{
    public double Rate => Requests / Seconds;
}

/// A request as a profile renders it (from the preview), replayed by the raw-ceiling load.
public sealed record RawRequest(string Method, string Url, IReadOnlyList<KeyValuePair<string, string>> Headers, string? Body)
{
    public static RawRequest From(JsonNode request) => new(
        request["method"]!.GetValue<string>(),
        request["url"]!.GetValue<string>(),
        request["headers"] is JsonArray headers
            ? headers.Select(h => new KeyValuePair<string, string>((h!["key"] ?? h["Key"])!.GetValue<string>(), (h["value"] ?? h["Value"])!.GetValue<string>())).ToList()
            : request["headers"] is JsonObject map
                ? map.Select(h => new KeyValuePair<string, string>(h.Key, h.Value!.GetValue<string>())).ToList()
                : [],
        request["body"]?.GetValue<string>());

    public HttpRequestMessage ToMessage()
    {
        var message = new HttpRequestMessage(new HttpMethod(Method), Url);
        if (Body is not null)
        {
            message.Content = new ByteArrayContent(System.Text.Encoding.UTF8.GetBytes(Body));
        }
        foreach (var (name, value) in Headers)
        {
            if (name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase))
            {
                message.Content ??= new ByteArrayContent([]);
                message.Content.Headers.TryAddWithoutValidation(name, value);
            }
            else
            {
                message.Headers.TryAddWithoutValidation(name, value);
            }
        }
        message.Headers.TryAddWithoutValidation("User-Agent", "Postback/1.0");
        message.Headers.TryAddWithoutValidation("webhook-id", "dlv_1");
        message.Headers.TryAddWithoutValidation(Receiver.RawHeader, "1");
        return message;
    }
}

public sealed record BacklogRow(long Pending, long RssKb, long HwmKb, double IngestRate, long? DbBytes);

public sealed record LogSummary(int Warnings, int Failures, int Busy, IReadOnlyList<string> Samples);

/// The latency phase run while a retention sweep deleted Rows rows (deliveries and attempts);
/// SweepSeconds from the sweep's start to its end (lastSweepStartedAt and lastSweepAt of GET
/// /api/v1/storage); null when it had not finished within the phase.
public sealed record SweepResult(long Seeded, long Rows, double? SweepSeconds, bool Overlapped, LatencyResult Latency)
{
    public bool Met => Overlapped && Latency.Complete && Latency.P99 < 50;
}

public sealed record StorageResult(
    string Storage, string StorageNote, int HubPid, string HubLog,
    RawResult Raw, ThroughputResult Throughput, LatencyResult Latency,
    long HwmKb, long PeakSampledRssKb, long RssAfterKb, int PeakThreads,
    IReadOnlyList<BacklogRow> Backlog, ThroughputResult? AfterBacklog, LogSummary Log)
{
    public double Ratio => Throughput.EndToEndRate / Raw.Rate;

    public double RatioTarget => Storage == "sqlite" ? 0.10 : 0.06;

    public bool RatioMet => Throughput.Complete && Ratio >= RatioTarget;

    /// The first --cold events after the hub started (null when --cold 0).
    public ThroughputResult? Cold { get; init; }

    public double? ColdRatio => Cold is { } c ? c.EndToEndRate / Raw.Rate : null;

    /// Only SQLite's cold start has a target (6 %); PostgreSQL's is reported.
    public double? ColdTarget => Storage == "sqlite" ? 0.06 : null;

    public bool? ColdMet => Cold is not { } c || ColdTarget is not { } target ? null : c.Complete && ColdRatio >= target;

    public bool LatencyMet => Latency.Complete && Latency.P99 < 50;

    /// From the first backlog step on (the hub under ingest load), no RSS sample more than 20 %
    /// (or 32 MiB) above the first. The 0-pending row is an idle hub and only shown.
    public bool? MemoryFlat => Backlog.Count < 3 ? null
        : Backlog.Skip(1).Max(b => b.RssKb) <= Math.Max(Backlog[1].RssKb * 1.2, Backlog[1].RssKb + 32 * 1024);

    public SweepResult? Sweep { get; init; }

    public bool AllTargetsMet => RatioMet && LatencyMet && ColdMet != false && MemoryFlat != false && Sweep?.Met != false;
}

/// One storage's run: start the hub on a fresh database, set up a campaign and two profiles
/// through the API, then warm-up, raw ceiling, throughput, latency and (optionally) backlog.
public sealed partial class StorageRun(BenchOptions options, string storage, string dir)
{
    private const int WarmupPhase = 1;
    private const int ThroughputPhase = 2;
    private const int LatencyPhase = 3;
    private const int BacklogPhase = 4;
    private const int AfterBacklogPhase = 5;
    private const int SweepSeedPhase = 6;
    private const int SweepLatencyPhase = 7;
    private const int SweepWarmupPhase = 8;
    private const int ColdPhase = 10;
    // The restarted hub's first sweep is due this long after its start: time to warm it up.
    private static readonly TimeSpan SweepDueAfter = TimeSpan.FromSeconds(45);

    private static void Log(string message) =>
        Console.Error.WriteLine($"[bench {DateTime.Now:HH:mm:ss}] {message}");

    public async Task<StorageResult> RunAsync()
    {
        Directory.CreateDirectory(dir);
        var apiKey = "pb_bench_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var env = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["Logging__LogLevel__Default"] = "Warning",
            ["Postback__BootstrapApiKey"] = apiKey,
            ["Postback__Outbound__AllowPrivateNetworks"] = "true",
            ["Postback__Storage__Provider"] = storage,
            ["Postback__Storage__DataDirectory"] = Path.Combine(dir, "data"),
        };
        string note;
        if (storage == "postgres")
        {
            env["ConnectionStrings__Postback"] = options.Postgres!;
            note = "PostgreSQL, fsync=on, synchronous_commit=on (durable)";
        }
        else
        {
            note = "SQLite file in WAL mode, library default synchronous (durable)";
        }
        foreach (var (k, v) in options.HubEnvironment)
        {
            env[k] = v;
        }

        var capacity = ((options.Warmup + 500) * options.WarmupRounds + options.Events * 2 + options.Cold * 2 + options.Rate * options.LatencySeconds * 2
            + Math.Min(options.Events, 5_000) * 2 + 10_000 + options.Sweep / 2 + options.Rate * options.SweepSeconds + 5_000) * options.Workload.DeliveriesPerEvent;
        await using var receiver = await Receiver.StartAsync(capacity);
        var postbackUrl = new Uri(receiver.BaseUri, "postback").ToString();
        string ProfileUrl(int i) => new Uri(receiver.Endpoints[i % receiver.Endpoints.Count], "postback").ToString();
        Log($"{storage}: receiver on {string.Join(" and ", receiver.Endpoints)}; starting the hub ({options.HubDll})");

        var logPath = Path.Combine(dir, "hub.log");
        await using var hub = await HubProcess.StartAsync(options.HubDll, env, logPath, Path.Combine(dir, "hub.pid"), TimeSpan.FromSeconds(120));
        Log($"{storage}: hub pid {hub.Pid} healthy on {hub.BaseUri}; memory after start {Mib(hub.Memory().RssKb)}");

        using var api = new HubApi(hub.BaseUri, apiKey, Math.Max(options.IngestConnections, 4));
        using var setup = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await api.PostJsonAsync("campaigns", new JsonObject
        {
            ["campaignId"] = "259",
            ["name"] = "Bench Lander",
            ["products"] = new JsonArray(
                new JsonObject { ["productId"] = "12", ["sku"] = "TRIAL-1", ["name"] = "Trial bottle", ["price"] = 4.95 },
                new JsonObject { ["productId"] = "14", ["sku"] = "SUB-30", ["name"] = "Monthly supply", ["price"] = 49.95 }),
        }, setup.Token);
        var workload = options.Workload;
        var samples = new List<RawRequest>();
        foreach (var (p, index) in workload.Profiles.Select((p, i) => (p, i)))
        {
            var profile = await api.PostJsonAsync("export-profiles", new JsonObject
            {
                ["name"] = p.Name,
                ["postbackUrl"] = ProfileUrl(index),
                ["exportDelayMinutes"] = 0,
                ["ordering"] = options.StuckOrderSeconds > 0 ? "perOrder" : "none",
                ["mappings"] = p.Mappings,
                ["routes"] = new JsonArray(new JsonObject { ["customerTypes"] = new JsonArray("new_sale") }),
            }, setup.Token);
            var profileId = profile["id"]!.GetValue<long>();
            var preview = await api.PostJsonAsync($"export-profiles/{profileId}/preview",
                new JsonObject { ["order"] = workload.Order(ThroughputPhase * Receiver.PhaseSpan + 1, Stopwatch.GetTimestamp()) }, setup.Token);
            var sample = RawRequest.From(preview["request"]!);
            if (sample.Method != p.Method)
            {
                throw new BenchException($"profile {p.Name} renders a {sample.Method}, not the {p.Method} the receiver tells it by");
            }
            samples.Add(sample);
            Log($"{storage}: profile {profileId} ({p.Name}): {sample.Method} {sample.Url.Length} characters"
                + (sample.Body is null ? "" : $", body {sample.Body.Length} bytes, {sample.Headers.Count} headers") + $": {sample.Url}{(sample.Body is null ? "" : " " + sample.Body)}");
        }
        Log($"{storage}: workload {workload.Name}: orders of {workload.OrderBytes():N0} bytes of JSON, {workload.DeliveriesPerEvent} deliveries per event");

        // Raw ceiling, with the hub idle: the same receiver, the same requests, no hub.
        Log($"{storage}: raw ceiling: {options.Events} requests like the profiles' straight to the receiver over {options.RawConnections} connections");
        var raw = await RawCeilingAsync(receiver, samples, options.Events, options.RawConnections, hub);
        Log($"{storage}: raw ceiling {raw.Rate:N0} requests/s ({raw.Cpu})");

        // Cold: the first events the hub ever sees (it has only answered the set-up calls).
        ThroughputResult? cold = null;
        if (options.Cold > 0)
        {
            Log($"{storage}: cold: the first {options.Cold} events after the hub started, in batches of {options.Batch} over {options.IngestConnections} connections");
            cold = await ThroughputAsync(api, receiver, hub, ColdPhase, "cold-", options.Cold);
            Log($"{storage}: cold: ingest {cold.Ingest.Rate:N0} events/s, end-to-end {cold.EndToEndRate:N0} deliveries/s ({cold.EndToEndRate / raw.Rate:P1} of raw; {cold.Cpu})");
        }

        // Warm-up, not measured: JIT (tiered compilation with dynamic PGO keeps recompiling for
        // a while after start), connection pools, page cache. Rounds of batch and single events
        // until a round costs the hub's tiered-compilation thread less than 0.1 s of CPU.
        if (options.Warmup > 0)
        {
            long expected = 0;
            for (var round = 1; round <= options.WarmupRounds; round++)
            {
                var jit0 = hub.JitSeconds;
                var cpu0 = Proc.CpuSeconds(hub.Pid) ?? 0;
                var warm = await IngestAsync(api, WarmupPhase, "new_sale", "warm-", (long)(round - 1) * options.Warmup, options.Warmup, options.Batch, options.IngestConnections, workload.DeliveriesPerEvent);
                expected += warm.Deliveries;
                await WaitDeliveredAsync(receiver, hub, WarmupPhase, expected, "warm-up");
                expected += await PostSinglesAsync(hub, apiKey, WarmupPhase, "warm-single-", 5_000_000L + round * 10_000L, 500, 16, workload);
                await WaitDeliveredAsync(receiver, hub, WarmupPhase, expected, "warm-up");
                var jit = hub.JitSeconds - jit0;
                Log($"{storage}: warm-up round {round}: {options.Warmup + 500} events; hub CPU {(Proc.CpuSeconds(hub.Pid) ?? 0) - cpu0:0.00} s, of which tiered JIT {jit:0.00} s");
                if (round >= 2 && jit < 0.1)
                {
                    break;
                }
            }
        }

        // Let background tier-up of what the warm-up ran finish while the hub idles: wait until
        // its JIT thread has used no CPU for a second (at most 20 s).
        var settleStart = Stopwatch.GetTimestamp();
        var quietSince = Stopwatch.GetTimestamp();
        var lastJit = hub.JitSeconds;
        while (Stopwatch.GetElapsedTime(settleStart).TotalSeconds < 20 && Stopwatch.GetElapsedTime(quietSince).TotalSeconds < 1)
        {
            await Task.Delay(200);
            var jit = hub.JitSeconds;
            if (jit - lastJit > 0.005)
            {
                quietSince = Stopwatch.GetTimestamp();
            }
            lastJit = jit;
        }

        Log($"{storage}: throughput: {options.Events} events in batches of {options.Batch} over {options.IngestConnections} connections");
        var throughput = await ThroughputAsync(api, receiver, hub, ThroughputPhase, "tp-", options.Events);
        Log($"{storage}: ingest {throughput.Ingest.Rate:N0} events/s, end-to-end {throughput.EndToEndRate:N0} deliveries/s ({throughput.Cpu})");

        if (options.StuckOrderSeconds > 0)
        {
            await StartStuckOrderAsync(api, receiver);
        }
        // The earlier phases' writes (tens of thousands of events in seconds) reach the disk
        // here rather than during the latency phase: the kernel writes a dirty page back about
        // 30 s after it was written, and that burst would make the phase's commits wait on a
        // busy disk for what 500 events a second do not write.
        var flushed = Stopwatch.StartNew();
        Proc.Sync();
        Log($"{storage}: the earlier phases' writes flushed to disk (sync) in {flushed.Elapsed.TotalSeconds:0.00} s");
        Log($"{storage}: latency: {options.Rate} events/s for {options.LatencySeconds} s, one POST /api/v1/events each");
        var latency = await LatencyAsync(hub, apiKey, receiver, LatencyPhase, options.LatencySeconds);
        Log($"{storage}: latency p50 {latency.P50:0.0} ms, p99 {latency.P99:0.0} ms, max {latency.Max:0.0} ms ({latency.Cpu})");

        var memory = hub.Memory();
        var hwm = memory.HwmKb;
        var peakSampled = hub.PeakSampledRssKb;

        var backlog = new List<BacklogRow>();
        ThroughputResult? afterBacklog = null;
        if (options.Backlog > 0)
        {
            backlog = await BacklogAsync(api, hub, postbackUrl);
            var n = Math.Min(options.Events, 5_000);
            Log($"{storage}: throughput with the backlog pending: {n} events");
            afterBacklog = await ThroughputAsync(api, receiver, hub, AfterBacklogPhase, "ab-", n);
            Log($"{storage}: with backlog: end-to-end {afterBacklog.EndToEndRate:N0} deliveries/s");
        }

        if (receiver.Other > 0)
        {
            Log($"{storage}: WARNING: the receiver got {receiver.Other} requests that were neither deliveries nor raw load");
        }
        long seeded = 0;
        if (options.Sweep > 0)
        {
            // Every delivery leaves its row and one attempt: N/2 deliveries make N rows to sweep.
            var events = Math.Max(1, options.Sweep / (2 * options.Workload.DeliveriesPerEvent));
            Log($"{storage}: sweep: seeding {events:N0} delivered events ({events * 2L * options.Workload.DeliveriesPerEvent:N0} rows to delete)");
            var seed = await IngestAsync(api, SweepSeedPhase, "new_sale", "sweep-", 0, events, options.Batch, options.IngestConnections, options.Workload.DeliveriesPerEvent);
            await WaitDeliveredAsync(receiver, hub, SweepSeedPhase, seed.Deliveries, "sweep seeding");
            seeded = seed.Deliveries;
        }

        var after = hub.Memory().RssKb;
        await hub.StopAsync(TimeSpan.FromSeconds(30));
        var log = SummarizeLog(logPath);
        var sweep = options.Sweep > 0 ? await SweepAsync(env, apiKey, receiver, seeded) : null;
        return new StorageResult(storage, note, hub.Pid, logPath, raw, throughput, latency, hwm, peakSampled, after, hub.PeakThreads, backlog, afterBacklog, log)
        {
            Sweep = sweep,
            Cold = cold,
        };
    }

    /// The hub restarted on the same database with every finished delivery past its retention
    /// and its first sweep due SweepDueAfter from start; warmed up meanwhile, then events at the
    /// latency rate from just before the sweep is due, for --sweep-seconds.
    private async Task<SweepResult> SweepAsync(Dictionary<string, string> baseEnv, string apiKey, Receiver receiver, long seeded)
    {
        var env = new Dictionary<string, string>(baseEnv, StringComparer.Ordinal)
        {
            ["Postback__Retention__FinishedDeliveries"] = "00:00:01",
            // The first sweep runs one interval after start.
            ["Postback__Retention__SweepInterval"] = SweepDueAfter.ToString("c", CultureInfo.InvariantCulture),
        };
        var logPath = Path.Combine(dir, "hub-sweep.log");
        await using var hub = await HubProcess.StartAsync(options.HubDll, env, logPath, Path.Combine(dir, "hub-sweep.pid"), TimeSpan.FromSeconds(120));
        // Its timer starts just before it answers /health.
        var due = DateTimeOffset.UtcNow + SweepDueAfter;
        Log($"{storage}: sweep: hub restarted (pid {hub.Pid}); first sweep due at {due:HH:mm:ss}");
        using var api = new HubApi(hub.BaseUri, apiKey, 4);
        long expected = 0;
        for (var round = 0; DateTimeOffset.UtcNow < due - TimeSpan.FromSeconds(12) && round < 20; round++)
        {
            expected += await PostSinglesAsync(hub, apiKey, SweepWarmupPhase, "sweep-warm-", round * 1_000L, 500, 16, options.Workload);
            await WaitDeliveredAsync(receiver, hub, SweepWarmupPhase, expected, "sweep warm-up");
        }
        var wait = due - TimeSpan.FromSeconds(2) - DateTimeOffset.UtcNow;
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait);
        }
        Log($"{storage}: sweep: latency at {options.Rate} events/s for {options.SweepSeconds} s while the sweep runs");
        // The first finished sweep is the one measured (a second may follow within the phase):
        // looked for every two seconds meanwhile.
        JsonNode? first = null;
        using var stop = new CancellationTokenSource();
        var watch = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested && first is null)
            {
                var retention = (await api.GetJsonAsync("storage", CancellationToken.None))["retention"]!;
                if (retention["lastSweepAt"] is not null)
                {
                    first = retention;
                    return;
                }
                await Task.Delay(2_000);
            }
        });
        var phaseStart = DateTimeOffset.UtcNow;
        var latency = await LatencyAsync(hub, apiKey, receiver, SweepLatencyPhase, options.SweepSeconds);
        var phaseEnd = DateTimeOffset.UtcNow;
        await stop.CancelAsync();
        await watch;
        var lastAt = first?["lastSweepAt"]?.GetValue<DateTimeOffset>();
        var removed = first?["lastSweepRemoved"];
        var rows = removed is null ? 0 : removed["deliveries"]!.GetValue<long>() + removed["deliveryAttempts"]!.GetValue<long>();
        var startedAt = first?["lastSweepStartedAt"]?.GetValue<DateTimeOffset>();
        double? seconds = lastAt is { } at && startedAt is { } from ? (at - from).TotalSeconds : null;
        // The whole sweep within the phase (the events went in while it deleted).
        var overlapped = startedAt is { } s0 && lastAt is { } s1 && s0 >= phaseStart - TimeSpan.FromSeconds(1) && s1 <= phaseEnd && rows >= seeded;
        Log($"{storage}: sweep: {rows:N0} rows deleted in {(seconds is { } s ? s.ToString("0.0", CultureInfo.InvariantCulture) + " s" : "(not finished)")}; latency p99 {latency.P99:0.0} ms");
        await hub.StopAsync(TimeSpan.FromSeconds(30));
        return new SweepResult(seeded, rows, seconds, overlapped, latency);
    }

    // ------------------------------------------------------------------ ingest

    private async Task<IngestStats> IngestAsync(HubApi api, int phase, string type, string prefix, long offset, int count, int batch, int connections, int deliveriesPerEvent)
    {
        var batches = (count + batch - 1) / batch;
        var next = -1;
        long scheduled = 0;
        var errors = new ConcurrentQueue<string>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(Math.Max(300, count / 50.0)));
        var start = Stopwatch.GetTimestamp();

        async Task Worker()
        {
            while (errors.IsEmpty)
            {
                var b = Interlocked.Increment(ref next);
                if (b >= batches)
                {
                    return;
                }
                var first = phase * Receiver.PhaseSpan + 1 + offset + (long)b * batch;
                var n = Math.Min(batch, count - b * batch);
                var body = options.Workload.Batch(prefix, type, first, n, Stopwatch.GetTimestamp());
                try
                {
                    var (status, deliveries, error) = await api.PostEventsAsync("events/batch", body, cts.Token);
                    if (error is not null)
                    {
                        errors.Enqueue($"POST /api/v1/events/batch answered {(int)status}: {error}");
                        return;
                    }
                    if (deliveries != n * deliveriesPerEvent)
                    {
                        errors.Enqueue($"a batch of {n} new events scheduled {deliveries} deliveries, not {n * deliveriesPerEvent}");
                        return;
                    }
                    Interlocked.Add(ref scheduled, deliveries);
                }
                catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
                {
                    errors.Enqueue("POST /api/v1/events/batch failed: " + e.Message);
                    return;
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, connections).Select(_ => Task.Run(Worker)));
        var end = Stopwatch.GetTimestamp();
        if (errors.TryPeek(out var first))
        {
            throw new BenchException(first);
        }
        return new IngestStats(start, end, count, scheduled);
    }

    private async Task<bool> WaitDeliveredAsync(Receiver receiver, HubProcess hub, int phase, long expected, string what)
    {
        var started = Stopwatch.GetTimestamp();
        var lastProgress = started;
        var last = -1L;
        var lastReport = started;
        while (true)
        {
            var n = receiver.Delivered(phase);
            if (n >= expected)
            {
                return true;
            }
            var now = Stopwatch.GetTimestamp();
            if (n != last)
            {
                last = n;
                lastProgress = now;
            }
            if (hub.HasExited)
            {
                throw new BenchException($"the hub exited during {what}; last lines of its log:\n{HubProcess.Tail(hub.LogPath, 30)}");
            }
            if (Stopwatch.GetElapsedTime(lastProgress, now).TotalSeconds > options.StallTimeoutSeconds
                || Stopwatch.GetElapsedTime(started, now).TotalSeconds > options.DeliveryTimeoutSeconds)
            {
                Log($"{storage}: {what}: gave up waiting: {n} of {expected} deliveries arrived");
                return false;
            }
            if (Stopwatch.GetElapsedTime(lastReport, now).TotalSeconds >= 10)
            {
                lastReport = now;
                Log($"{storage}: {what}: {n:N0} of {expected:N0} delivered; hub RSS {Mib(hub.Memory().RssKb)}");
            }
            await Task.Delay(20);
        }
    }

    // ------------------------------------------------------------------ phases

    private async Task<ThroughputResult> ThroughputAsync(HubApi api, Receiver receiver, HubProcess hub, int phase, string prefix, int events)
    {
        var cpu0 = CpuSnapshot.Take(hub, storage == "postgres");
        var ingest = await IngestAsync(api, phase, "new_sale", prefix, 0, events, options.Batch, options.IngestConnections, options.Workload.DeliveriesPerEvent);
        var atIngestEnd = receiver.Delivered(phase);
        Log($"{storage}: ingest done in {ingest.Seconds:0.00} s ({ingest.Rate:N0} events/s); {atIngestEnd:N0} of {ingest.Deliveries:N0} delivered so far");
        var complete = await WaitDeliveredAsync(receiver, hub, phase, ingest.Deliveries, "throughput");
        var cpu1 = CpuSnapshot.Take(hub, storage == "postgres");

        var arrivals = receiver.Arrivals(phase);
        if (arrivals.Count == 0)
        {
            throw new BenchException("no delivery arrived in the throughput phase");
        }
        var lastAt = arrivals.Max(a => a.ReceivedAt);
        var firstAt = arrivals.Min(a => a.ReceivedAt);
        var distinct = arrivals.Select(a => (a.OrderId, a.Profile)).Distinct().Count();
        var e2e = Stopwatch.GetElapsedTime(ingest.Start, lastAt).TotalSeconds;
        var byTime = arrivals.Select(a => Stopwatch.GetElapsedTime(ingest.Start, a.ReceivedAt).TotalSeconds).Order().ToArray();
        double At(double q) => byTime[Math.Clamp((int)Math.Ceiling(q * byTime.Length) - 1, 0, byTime.Length - 1)];
        var perSecond = new long[(int)Math.Ceiling(e2e) + 1];
        foreach (var t in byTime)
        {
            perSecond[(int)t]++;
        }
        return new ThroughputResult(
            events, ingest, distinct, arrivals.Count - distinct, complete && distinct >= ingest.Deliveries,
            e2e, Stopwatch.GetElapsedTime(ingest.Start, firstAt).TotalSeconds, atIngestEnd,
            [At(0.25), At(0.5), At(0.75), At(1.0)], perSecond, CpuUse.Between(cpu0, cpu1));
    }

    private async Task<LatencyResult> LatencyAsync(HubProcess hub, string apiKey, Receiver receiver, int phase, int seconds)
    {
        using var api = new HubApi(hub.BaseUri, apiKey, 64);
        var total = options.Rate * seconds;
        var interval = (double)Stopwatch.Frequency / options.Rate;
        var sends = new Task<(long Started, long Ended, HttpStatusCode Status, string? Error)>[total];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(seconds + 120));
        long maxLag = 0;
        long firstSend = 0, lastSend = 0;

        async Task<(long, long, HttpStatusCode, string?)> SendOne(int i)
        {
            var orderId = phase * Receiver.PhaseSpan + 1 + i;
            var sentAt = Stopwatch.GetTimestamp();
            var body = options.Workload.Single("lat-" + orderId.ToString(CultureInfo.InvariantCulture), "new_sale", orderId, sentAt);
            try
            {
                var (status, deliveries, error) = await api.PostEventsAsync("events", body, cts.Token);
                var expected = options.Workload.DeliveriesPerEvent;
                return (sentAt, Stopwatch.GetTimestamp(), status, error ?? (deliveries == expected ? null : $"{deliveries} deliveries scheduled, not {expected}"));
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
            {
                return (sentAt, Stopwatch.GetTimestamp(), 0, e.Message);
            }
        }

        var cpu0 = CpuSnapshot.Take(hub, storage == "postgres");
        // A dedicated thread paces the sends: event i goes out at t0 + i / rate, not in bursts.
        var pacer = new Thread(() =>
        {
            var t0 = Stopwatch.GetTimestamp();
            var oneMs = Stopwatch.Frequency / 1000;
            for (var i = 0; i < total; i++)
            {
                var due = t0 + (long)(i * interval);
                while (true)
                {
                    var wait = due - Stopwatch.GetTimestamp();
                    if (wait <= 0)
                    {
                        break;
                    }
                    if (wait > oneMs + oneMs / 4)
                    {
                        Thread.Sleep(1);
                    }
                    else
                    {
                        Thread.Yield();
                    }
                }
                var now = Stopwatch.GetTimestamp();
                maxLag = Math.Max(maxLag, now - due);
                if (i == 0)
                {
                    firstSend = now;
                }
                lastSend = now;
                sends[i] = SendOne(i);
            }
        })
        { IsBackground = true, Name = "latency pacer", Priority = ThreadPriority.AboveNormal };
        pacer.Start();
        pacer.Join();
        await Task.WhenAll(sends);
        var answers = sends.Select(s => s.Result).ToArray();
        var accepted = answers.Count(a => a.Item4 is null);
        var firstError = answers.Select(a => a.Item4).FirstOrDefault(e => e is not null);
        var complete = await WaitDeliveredAsync(receiver, hub, phase, (long)accepted * options.Workload.DeliveriesPerEvent, "latency");
        var cpu1 = CpuSnapshot.Take(hub, storage == "postgres");

        var arrivals = receiver.Arrivals(phase);
        var ms = arrivals.Select(a => Stopwatch.GetElapsedTime(a.SentAt, a.ReceivedAt).TotalMilliseconds).Order().ToArray();
        var apiMs = answers.Select(a => Stopwatch.GetElapsedTime(a.Item1, a.Item2).TotalMilliseconds).Order().ToArray();
        var rate = total > 1 ? (total - 1) / Stopwatch.GetElapsedTime(firstSend, lastSend).TotalSeconds : 0;
        // The slowest event-to-delivery time of the events sent in each second: a stall shows
        // as one slow second, a queue as many.
        var maxBySecond = new double[seconds];
        foreach (var a in arrivals)
        {
            var second = (int)Stopwatch.GetElapsedTime(firstSend, a.SentAt).TotalSeconds;
            if (second >= 0 && second < seconds)
            {
                maxBySecond[second] = Math.Max(maxBySecond[second], Stopwatch.GetElapsedTime(a.SentAt, a.ReceivedAt).TotalMilliseconds);
            }
        }
        return new LatencyResult(
            total, accepted, arrivals.Count, complete, rate, maxLag * 1000.0 / Stopwatch.Frequency,
            Percentile(ms, 0.50), Percentile(ms, 0.90), Percentile(ms, 0.99), ms.Length == 0 ? double.NaN : ms[^1],
            Percentile(apiMs, 0.50), Percentile(apiMs, 0.99), apiMs.Length == 0 ? double.NaN : apiMs[^1],
            firstError, CpuUse.Between(cpu0, cpu1), maxBySecond);
    }

    // The stuck order lives in a phase of its own, so its arrivals are not counted as the
    // latency phase's: two events, the first answered 500 for the whole window (retrying on
    // its schedule), the second waiting behind it. The latency phase then measures whether
    // the other orders are held up by it.
    private const int StuckPhase = 9;

    private async Task StartStuckOrderAsync(HubApi api, Receiver receiver)
    {
        var orderId = StuckPhase * Receiver.PhaseSpan + 1;
        receiver.FailOrder(orderId, Stopwatch.GetTimestamp() + options.StuckOrderSeconds * Stopwatch.Frequency);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        foreach (var type in new[] { "new_sale", "new_sale" })
        {
            var body = options.Workload.Single($"stuck-{orderId}-{Guid.NewGuid():N}", type, orderId, Stopwatch.GetTimestamp());
            var (status, deliveries, error) = await api.PostEventsAsync("events", body, cts.Token);
            if (error is not null || deliveries != options.Workload.DeliveriesPerEvent)
            {
                throw new InvalidOperationException($"posting the stuck order's event answered {(int)status}: {error ?? deliveries + " deliveries"}");
            }
        }
        Log($"{storage}: stuck order {orderId}: its first delivery is answered 500 for {options.StuckOrderSeconds} s, its second waits behind it");
    }

    /// Single POST /api/v1/events calls, <paramref name="concurrency"/> at a time; returns the
    /// deliveries they scheduled.
    private static async Task<long> PostSinglesAsync(HubProcess hub, string apiKey, int phase, string prefix, long offset, int count, int concurrency, Workload workload)
    {
        using var api = new HubApi(hub.BaseUri, apiKey, concurrency);
        var next = -1;
        long scheduled = 0;
        string? failure = null;
        async Task Worker()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count && failure is null)
            {
                var orderId = phase * Receiver.PhaseSpan + 1 + offset + i;
                var (status, deliveries, error) = await api.PostEventsAsync("events",
                    workload.Single(prefix + orderId.ToString(CultureInfo.InvariantCulture), "new_sale", orderId, Stopwatch.GetTimestamp()), CancellationToken.None);
                if (error is not null)
                {
                    failure = $"POST /api/v1/events answered {(int)status}: {error}";
                }
                Interlocked.Add(ref scheduled, deliveries);
            }
        }
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(Worker)));
        return failure is null ? scheduled : throw new BenchException(failure);
    }

    private static double Percentile(double[] sorted, double q) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Length) - 1, 0, sorted.Length - 1)];

    private static async Task<RawResult> RawCeilingAsync(Receiver receiver, IReadOnlyList<RawRequest> samples, int requests, int connections, HubProcess hub)
    {
        using var http = new HttpClient(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = connections,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            UseProxy = false,
            UseCookies = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
        })
        { Timeout = TimeSpan.FromSeconds(30) };

        async Task<(int Errors, double Seconds)> Hammer(int total)
        {
            var sent = 0;
            var errors = 0;
            var start = Stopwatch.GetTimestamp();
            async Task Worker()
            {
                int n;
                while ((n = Interlocked.Increment(ref sent)) <= total)
                {
                    // Each profile's request in turn (as many of each as the hub delivers), with
                    // the headers the hub sends with a delivery, but marked raw.
                    using var request = samples[n % samples.Count].ToMessage();
                    try
                    {
                        using var response = await http.SendAsync(request);
                        await response.Content.ReadAsByteArrayAsync();
                        if (response.StatusCode != HttpStatusCode.OK)
                        {
                            Interlocked.Increment(ref errors);
                        }
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                    {
                        Interlocked.Increment(ref errors);
                    }
                }
            }
            await Task.WhenAll(Enumerable.Range(0, connections).Select(_ => Task.Run(Worker)));
            return (errors, Stopwatch.GetElapsedTime(start).TotalSeconds);
        }

        // Warm the client and the receiver, then take the best of three passes: a ceiling.
        await Hammer(Math.Max(requests, 20_000));
        (int Errors, double Seconds, CpuUse Cpu)? best = null;
        for (var pass = 0; pass < 3; pass++)
        {
            var before = receiver.Raw;
            var cpu0 = CpuSnapshot.Take(hub, false);
            var (errors, seconds) = await Hammer(requests);
            var cpu1 = CpuSnapshot.Take(hub, false);
            var arrived = receiver.Raw - before;
            if (arrived < requests - errors)
            {
                throw new BenchException($"the raw load sent {requests - errors} requests but the receiver counted {arrived}");
            }
            if (best is null || seconds < best.Value.Seconds)
            {
                best = (errors, seconds, CpuUse.Between(cpu0, cpu1));
            }
        }
        return new RawResult(requests, connections, best!.Value.Seconds, best.Value.Errors, best.Value.Cpu);
    }

    private async Task<List<BacklogRow>> BacklogAsync(HubApi api, HubProcess hub, string postbackUrl)
    {
        using var setup = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var profile = await api.PostJsonAsync("export-profiles", new JsonObject
        {
            ["name"] = "Bench backlog (one day delay)",
            ["postbackUrl"] = postbackUrl,
            ["exportDelayMinutes"] = 1440,
            ["mappings"] = Workload.CallCenterMappings(),
            ["routes"] = new JsonArray(new JsonObject { ["customerTypes"] = new JsonArray("upsell") }),
        }, setup.Token);
        Log($"{storage}: backlog: profile {profile["id"]} delays 1440 min; growing to {options.Backlog:N0} pending deliveries");
        var rows = new List<BacklogRow>();
        var before = hub.Memory();
        rows.Add(new BacklogRow(0, before.RssKb, before.HwmKb, double.NaN, DbBytes()));
        long pending = 0;
        var done = 0;
        while (done < options.Backlog)
        {
            var n = Math.Min(options.BacklogStep, options.Backlog - done);
            var stats = await IngestAsync(api, BacklogPhase, "upsell", "bl-", done, n, 500, options.IngestConnections, 1);
            done += n;
            pending += stats.Deliveries;
            var m = hub.Memory();
            var row = new BacklogRow(pending, m.RssKb, m.HwmKb, stats.Rate, DbBytes());
            rows.Add(row);
            Log($"{storage}: backlog {pending:N0} pending: RSS {Mib(m.RssKb)}, HWM {Mib(m.HwmKb)}, {stats.Rate:N0} events/s");
        }
        return rows;
    }

    private long? DbBytes()
    {
        if (storage != "sqlite")
        {
            return null;
        }
        var data = Path.Combine(dir, "data");
        return Directory.Exists(data) ? Directory.EnumerateFiles(data, "postback.db*").Sum(f => new FileInfo(f).Length) : null;
    }

    private static LogSummary SummarizeLog(string path)
    {
        var lines = File.Exists(path) ? HubProcess.ReadLines(path) : [];
        // EF Core logs its probe for the migrations table on a fresh PostgreSQL database as a
        // failed command; that one is expected.
        bool Expected(int i) => lines.Skip(i).Take(6).Any(l => l.Contains("__EFMigrationsHistory", StringComparison.Ordinal));
        var warnings = lines.Count(l => l.StartsWith("warn:", StringComparison.Ordinal));
        var failures = lines.Select((l, i) => (l, i)).Count(x =>
            (x.l.StartsWith("fail:", StringComparison.Ordinal) || x.l.StartsWith("crit:", StringComparison.Ordinal)) && !Expected(x.i));
        var busy = lines.Count(l => l.Contains("database is locked", StringComparison.OrdinalIgnoreCase)
            || l.Contains("SQLite Error 5", StringComparison.OrdinalIgnoreCase) || l.Contains("SQLITE_BUSY", StringComparison.OrdinalIgnoreCase));
        var samples = new List<string>();
        for (var i = 0; i < lines.Count && samples.Count < 6; i++)
        {
            if ((lines[i].StartsWith("warn:", StringComparison.Ordinal) || lines[i].StartsWith("fail:", StringComparison.Ordinal)
                || lines[i].StartsWith("crit:", StringComparison.Ordinal)) && !Expected(i))
            {
                var text = lines[i] + (i + 1 < lines.Count ? " | " + lines[i + 1].Trim() : "");
                if (!samples.Any(s => s[..Math.Min(60, s.Length)] == text[..Math.Min(60, text.Length)]))
                {
                    samples.Add(text.Length > 300 ? text[..300] + "..." : text);
                }
            }
        }
        return new LogSummary(warnings, failures, busy, samples);
    }

    public static string Mib(long kb) => string.Create(CultureInfo.InvariantCulture, $"{kb / 1024.0:0.0} MiB");
}
