using System.Diagnostics.Metrics;

namespace Postback.Infrastructure;

/// The hub's own instruments. Each OpenTelemetry name below becomes the Prometheus name in its
/// comment ('.' to '_', "_total" for counters, "_seconds" for the unit "s"); docs/observability.md
/// and deploy/grafana/postback.json use the Prometheus names.
///
/// Labels only ever take values from small fixed sets (a status, an outcome, a source): never an
/// id, a URL or anything a client chooses, so the number of series stays bounded. Recording is a
/// few nanoseconds when nothing listens (Postback:Metrics:Enabled=false), and an add to a
/// lock-free aggregate when something does: safe on the delivery hot path.
public static class PostbackMetrics
{
    public const string MeterName = "Postback";

    private static readonly Meter Meter = new(MeterName);

    // postback_events_ingested_total{source="api"|"plugin"}: events stored (a repeat of an
    // event id is not counted again).
    private static readonly Counter<long> EventsIngested = Meter.CreateCounter<long>(
        "postback.events.ingested", description: "Order events stored, by where they came from (api, plugin).");

    // postback_deliveries_total{status="succeeded"|"retrying"|"failed"|"cancelled"}: delivery
    // outcomes as recorded ("retrying": an attempt failed and another is scheduled).
    private static readonly Counter<long> Deliveries = Meter.CreateCounter<long>(
        "postback.deliveries", description: "Delivery outcomes recorded: succeeded, retrying (an attempt failed, another is due), failed (given up), cancelled.");

    // postback_confirmations_total{status}: the same for order confirmations.
    private static readonly Counter<long> Confirmations = Meter.CreateCounter<long>(
        "postback.confirmations", description: "Order confirmation outcomes recorded: succeeded, retrying, failed.");

    // postback_file_runs_total{status="succeeded"|"retrying"|"failed"}: file export run
    // outcomes as the file run worker records them ("retrying": an upload failed, another is due).
    private static readonly Counter<long> FileRuns = Meter.CreateCounter<long>(
        "postback.file_runs", description: "File export runs finished: succeeded, retrying, failed.");

    // postback_delivery_attempt_duration_seconds{outcome="succeeded"|"rejected"|"error"}
    private static readonly Histogram<double> AttemptDuration = Meter.CreateHistogram(
        "postback.delivery.attempt.duration", unit: "s",
        description: "Time from sending a delivery's request to its answer: succeeded (2xx), rejected (another status), error (no answer: timeout, refused, DNS, TLS).",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] });

    // postback_delivery_latency_seconds: from the time a delivery was first due to its success.
    private static readonly Histogram<double> DeliveryLatency = Meter.CreateHistogram(
        "postback.delivery.latency", unit: "s",
        description: "Time from a delivery's first due time to its success (includes every retry).",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400] });

    // postback_inbound_postbacks_total{outcome}: accepted, duplicate, refused, invalid,
    // too_large, disabled, unknown_instance, failed (the inbound log's outcomes).
    private static readonly Counter<long> InboundPostbacks = Meter.CreateCounter<long>(
        "postback.inbound.postbacks", description: "CRM postbacks received by plugin instances, by outcome.");

    /// Every series of a counter starts at 0 when metrics are on, so rate() and alerts work
    /// from the first scrape instead of from the first failure.
    internal static void StartSeries()
    {
        foreach (var source in (string[])["api", "plugin"])
        {
            EventsIngested.Add(0, new KeyValuePair<string, object?>("source", source));
        }
        foreach (var status in (string[])["succeeded", "retrying", "failed", "cancelled"])
        {
            Deliveries.Add(0, new KeyValuePair<string, object?>("status", status));
        }
        foreach (var status in (string[])["succeeded", "retrying", "failed"])
        {
            Confirmations.Add(0, new KeyValuePair<string, object?>("status", status));
            FileRuns.Add(0, new KeyValuePair<string, object?>("status", status));
        }
        foreach (var outcome in (string[])["accepted", "duplicate", "refused", "invalid", "too_large", "disabled", "unknown_instance", "failed"])
        {
            InboundPostbacks.Add(0, new KeyValuePair<string, object?>("outcome", outcome));
        }
    }

    public static void EventsStored(string source, int count)
    {
        if (count > 0)
        {
            EventsIngested.Add(count, new KeyValuePair<string, object?>("source", source));
        }
    }

    public static void DeliveryRecorded(string status) =>
        Deliveries.Add(1, new KeyValuePair<string, object?>("status", status));

    public static void DeliveriesCancelled(int count)
    {
        if (count > 0)
        {
            Deliveries.Add(count, new KeyValuePair<string, object?>("status", "cancelled"));
        }
    }

    public static void ConfirmationRecorded(string status) =>
        Confirmations.Add(1, new KeyValuePair<string, object?>("status", status));

    /// Once per recorded outcome of a file run: "succeeded", "retrying" or "failed".
    public static void FileRunFinished(string status) =>
        FileRuns.Add(1, new KeyValuePair<string, object?>("status", status));

    public static void AttemptFinished(string outcome, double seconds) =>
        AttemptDuration.Record(seconds, new KeyValuePair<string, object?>("outcome", outcome));

    public static void DeliverySucceeded(double secondsSinceFirstDue) =>
        DeliveryLatency.Record(Math.Max(0, secondsSinceFirstDue));

    public static void InboundPostback(string outcome) =>
        InboundPostbacks.Add(1, new KeyValuePair<string, object?>("outcome", outcome));
}
