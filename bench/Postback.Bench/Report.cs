using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace Postback.Bench;

public static class Report
{
    private static string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static string Verdict(bool? met) => met switch { true => "PASS", false => "FAIL", null => "" };

    public static string Table(StorageResult r, BenchOptions o)
    {
        var t = r.Throughput;
        var l = r.Latency;
        var sb = new StringBuilder();
        sb.AppendLine(F($"== Postback delivery benchmark: {r.Storage} ({r.StorageNote}) =="));
        sb.AppendLine(F($"   machine: {Environment.ProcessorCount} CPUs, {RuntimeInformation.OSDescription}, .NET {Environment.Version}; hub pid {r.HubPid} (separate process, Production, Server GC), revision {Environment.GetEnvironmentVariable("BENCH_HUB_REVISION") ?? "unknown"}"));
        sb.AppendLine(F($"   hub build: {Environment.GetEnvironmentVariable("BENCH_HUB_BUILD") ?? "as given by --hub-dll"}"));
        sb.AppendLine(F($"   workload: {o.Workload.Name}: orders of {o.Workload.OrderBytes():N0} bytes of JSON, {o.Workload.DeliveriesPerEvent} deliveries per event ({string.Join(", ", o.Workload.Profiles.Select(p => F($"{p.Name}: {p.Method}, {p.Mappings.Count} mappings")))})"));
        sb.AppendLine(F($"   load: {(r.Cold is { } c0 ? F($"cold {c0.Events:N0} events first, then ") : "")}{t.Events:N0} events warm, batches of {o.Batch} over {o.IngestConnections} connections; latency at {o.Rate} events/s for {o.LatencySeconds} s; raw ceiling over {r.Raw.Connections} connections"));
        sb.AppendLine();

        var rows = new List<(string Figure, string Value, string Target, string Verdict)>
        {
            ("ingest rate (events accepted/s)", F($"{t.Ingest.Rate:N0}/s"), "", ""),
            ("end-to-end deliveries/s (first sent -> last received)", F($"{t.EndToEndRate:N0}/s") + (t.Complete ? "" : " (INCOMPLETE)"),
                F($">= {r.RatioTarget:P0} of raw = {r.RatioTarget * r.Raw.Rate:N0}/s"), Verdict(r.RatioMet)),
            ("raw ceiling (receiver hammered directly, req/s)", F($"{r.Raw.Rate:N0}/s"), "", ""),
            ("hub end-to-end / raw ceiling, warm", F($"{r.Ratio:P1}"), F($">= {r.RatioTarget:P0}"), Verdict(r.RatioMet)),
            (F($"event-to-delivery latency p50 at {o.Rate}/s"), F($"{l.P50:0.0} ms"), "", ""),
            (F($"event-to-delivery latency p99 at {o.Rate}/s"), F($"{l.P99:0.0} ms") + (l.Complete ? "" : " (INCOMPLETE)"), "< 50 ms", Verdict(r.LatencyMet)),
            (F($"event-to-delivery latency max at {o.Rate}/s"), F($"{l.Max:0.0} ms"), "", ""),
            ("hub peak memory (VmHWM, throughput + latency)", StorageRun.Mib(r.HwmKb), "", ""),
        };
        if (r.Cold is { } cold)
        {
            rows.Insert(2, (F($"cold: first {cold.Events:N0} events after start, deliveries/s"), F($"{cold.EndToEndRate:N0}/s") + (cold.Complete ? "" : " (INCOMPLETE)"),
                r.ColdTarget is { } ct ? F($">= {ct:P0} of raw = {ct * r.Raw.Rate:N0}/s") : "", Verdict(r.ColdMet)));
            rows.Insert(3, ("cold: ingest rate (events accepted/s)", F($"{cold.Ingest.Rate:N0}/s"), "", ""));
            rows.Add(("hub end-to-end / raw ceiling, cold", F($"{r.ColdRatio:P1}"), r.ColdTarget is { } ct2 ? F($">= {ct2:P0}") : "", Verdict(r.ColdMet)));
        }
        if (r.Sweep is { } sw)
        {
            rows.Add((F($"retention sweep: rows deleted (of {sw.Seeded * 2:N0} seeded)"),
                F($"{sw.Rows:N0}") + (sw.SweepSeconds is { } secs ? F($" in {secs:0.0} s ({(secs > 0 ? sw.Rows / secs : 0):N0} rows/s)") : " (NOT FINISHED in the phase)"), "", ""));
            rows.Add((F($"event-to-delivery latency p99 at {o.Rate}/s during the sweep"), F($"{sw.Latency.P99:0.0} ms") + (sw.Latency.Complete ? "" : " (INCOMPLETE)")
                + (sw.Overlapped ? "" : " (the sweep did not run within the phase)"), "< 50 ms", Verdict(sw.Met)));
            rows.Add((F($"event-to-delivery latency max during the sweep"), F($"{sw.Latency.Max:0.0} ms"), "", ""));
        }
        if (r.Backlog.Count > 2)
        {
            rows.Add((F($"hub VmRSS, backlog {r.Backlog[1].Pending:N0} -> {r.Backlog[^1].Pending:N0} pending (max)"),
                F($"{StorageRun.Mib(r.Backlog[1].RssKb)} -> {StorageRun.Mib(r.Backlog[^1].RssKb)} ({StorageRun.Mib(r.Backlog.Skip(1).Max(b => b.RssKb))})"),
                "flat (<= +20 %)", Verdict(r.MemoryFlat)));
        }
        else
        {
            rows.Add(("hub memory as the backlog grows to 1,000,000", "not run (--backlog 1000000)", "flat", ""));
        }
        var w0 = rows.Max(x => x.Figure.Length);
        var w1 = Math.Max(14, rows.Max(x => x.Value.Length));
        var w2 = Math.Max(10, rows.Max(x => x.Target.Length));
        sb.AppendLine("   " + "figure".PadRight(w0) + "  " + "measured".PadRight(w1) + "  " + "target".PadRight(w2) + "  result");
        sb.AppendLine("   " + new string('-', w0) + "  " + new string('-', w1) + "  " + new string('-', w2) + "  ------");
        foreach (var (figure, value, target, verdict) in rows)
        {
            sb.AppendLine("   " + figure.PadRight(w0) + "  " + value.PadRight(w1) + "  " + target.PadRight(w2) + "  " + verdict);
        }
        sb.AppendLine();

        sb.AppendLine("   details");
        sb.AppendLine(F($"   - throughput: ingest took {t.Ingest.Seconds:0.00} s; {t.DeliveredAtIngestEnd:N0} of {t.Events:N0} delivered by then; first delivery at +{t.FirstDeliverySeconds:0.00} s; 25/50/75/100 % delivered at +{t.Percentiles[0]:0.00}/{t.Percentiles[1]:0.00}/{t.Percentiles[2]:0.00}/{t.Percentiles[3]:0.00} s; {t.Delivered:N0} distinct deliveries, {t.Duplicates} repeats"));
        sb.AppendLine(F($"   - deliveries per second (1 s buckets from the first event sent): {string.Join(' ', t.PerSecond.Select(x => x.ToString("N0", CultureInfo.InvariantCulture)))}"));
        sb.AppendLine(F($"   - CPU during throughput ({t.Cpu.Seconds:0.0} s): {t.Cpu}"));
        if (r.Cold is { } c)
        {
            sb.AppendLine(F($"   - cold: ingest took {c.Ingest.Seconds:0.00} s; first delivery at +{c.FirstDeliverySeconds:0.00} s; 25/50/75/100 % delivered at +{c.Percentiles[0]:0.00}/{c.Percentiles[1]:0.00}/{c.Percentiles[2]:0.00}/{c.Percentiles[3]:0.00} s; {c.Delivered:N0} distinct deliveries, {c.Duplicates} repeats; CPU ({c.Cpu.Seconds:0.0} s): {c.Cpu}"));
            sb.AppendLine(F($"   - cold deliveries per second: {string.Join(' ', c.PerSecond.Select(x => x.ToString("N0", CultureInfo.InvariantCulture)))}"));
        }
        sb.AppendLine(F($"   - raw ceiling (best of 3 passes): {r.Raw.Requests:N0} requests in {r.Raw.Seconds:0.00} s, {r.Raw.Errors} errors; CPU: {r.Raw.Cpu}"));
        sb.AppendLine(F($"   - latency phase: {l.Sent:N0} events sent at {l.AchievedRate:0.0}/s (worst pacing lag {l.MaxPacingLagMs:0.0} ms), {l.Accepted:N0} accepted, {l.Delivered:N0} delivered; p90 {l.P90:0.0} ms; POST /events answered in p50 {l.ApiP50:0.0} / p99 {l.ApiP99:0.0} / max {l.ApiMax:0.0} ms") + (l.FirstError is null ? "" : "; first error: " + l.FirstError));
        sb.AppendLine(F($"   - latency phase, slowest delivery of the events sent in each second (ms): {string.Join(" ", l.MaxBySecond.Select(m => m.ToString("0", CultureInfo.InvariantCulture)))}"));
        sb.AppendLine(F($"   - CPU during latency ({l.Cpu.Seconds:0.0} s): {l.Cpu}"));
        sb.AppendLine(F($"   - hub memory: VmHWM {StorageRun.Mib(r.HwmKb)}, highest sampled VmRSS {StorageRun.Mib(r.PeakSampledRssKb)}, VmRSS at the end {StorageRun.Mib(r.RssAfterKb)}; most threads {r.PeakThreads}"));
        if (r.Backlog.Count > 0)
        {
            sb.AppendLine("   - backlog (export delay 1440 min, nothing due):");
            sb.AppendLine("       pending      VmRSS      VmHWM   ingest events/s   database");
            foreach (var b in r.Backlog)
            {
                sb.AppendLine(F($"     {b.Pending,9:N0}  {StorageRun.Mib(b.RssKb),9}  {StorageRun.Mib(b.HwmKb),9}   {(double.IsNaN(b.IngestRate) ? "" : b.IngestRate.ToString("N0", CultureInfo.InvariantCulture)),15}   {(b.DbBytes is { } d ? StorageRun.Mib(d / 1024) : "n/a")}"));
            }
            if (r.AfterBacklog is { } a)
            {
                sb.AppendLine(F($"   - with {r.Backlog[^1].Pending:N0} deliveries pending: {a.Events:N0} more events, ingest {a.Ingest.Rate:N0}/s, end-to-end {a.EndToEndRate:N0} deliveries/s") + (a.Complete ? "" : " (INCOMPLETE)") + F($"; CPU: {a.Cpu}"));
            }
        }
        sb.AppendLine(F($"   - hub log ({r.HubLog}): {r.Log.Warnings} warnings, {r.Log.Failures} errors, {r.Log.Busy} 'database is locked'"));
        foreach (var s in r.Log.Samples)
        {
            sb.AppendLine("       " + s);
        }
        return sb.ToString();
    }

    public static string Summary(IReadOnlyList<StorageResult> results)
    {
        var sb = new StringBuilder();
        sb.AppendLine("== summary ==");
        sb.AppendLine("   storage    ingest/s   end-to-end/s   raw ceiling/s   ratio  (target)   cold/s   cold ratio (target)   p50 ms   p99 ms   max ms   VmHWM");
        foreach (var r in results)
        {
            var cold = r.Cold is { } c ? F($"{c.EndToEndRate,8:N0}   {r.ColdRatio,6:P1}") + (r.ColdTarget is { } ct ? F($" (>= {ct,4:P0})") : "          ") : "       -        -            ";
            sb.AppendLine(F($"   {r.Storage,-8} {r.Throughput.Ingest.Rate,10:N0} {r.Throughput.EndToEndRate,14:N0} {r.Raw.Rate,15:N0}   {r.Ratio,6:P1}  (>= {r.RatioTarget,4:P0}) {cold}  {r.Latency.P50,8:0.0} {r.Latency.P99,8:0.0} {r.Latency.Max,8:0.0}   {StorageRun.Mib(r.HwmKb)}"));
        }
        return sb.ToString();
    }
}
