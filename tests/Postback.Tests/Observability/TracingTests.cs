using System.Diagnostics;
using System.Globalization;
using System.Net;
using OpenTelemetry;
using OpenTelemetry.Trace;
using Postback.Observability;
using Postback.Tests.Support;
using Postback.Infrastructure;

namespace Postback.Tests.Observability;

/// One trace from an inbound CRM postback to every delivery attempt it caused, exported to an
/// in-memory exporter: the attempts (sent by the worker, later, on another thread) are children
/// of the ingest span through the trace context stored on the delivery.
public sealed class TracingTests
{
    [Fact]
    public async Task An_inbound_postback_and_its_delivery_attempts_are_one_trace()
    {
        // Spans of every hub in this test process arrive here, from whichever thread ends them.
        var exported = new SpanLog();
        using var tracer = Sdk.CreateTracerProviderBuilder()
            .AddSource(PostbackTracing.SourceName)
            .AddSource("Microsoft.AspNetCore")
            .AddInMemoryExporter(exported)
            .Build();

        await using var receiver = await Receiver.StartAsync();
        var answers = 0;
        receiver.Respond = _ => Interlocked.Increment(ref answers) == 1 ? (503, "busy") : (200, "OK");
        await using var hub = await HubFactory.StartAsync(dispatch: true, settings: new Dictionary<string, string?>
        {
            ["Postback:Tracing:Enabled"] = "true",
            ["Postback:Delivery:FirstRetrySeconds"] = "0.2",
            ["Postback:Delivery:PollMilliseconds"] = "100",
        });
        using var api = hub.Api();
        await DeliveryScenario.CreateProfileAsync(api, receiver.Url("/hook"));
        var instance = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/plugin-instances", new { name = "Konnektive", kind = "konnektive" }), HttpStatusCode.Created);
        var secret = instance["secret"]!.GetValue<string>();
        using var crm = hub.Api(key: null);
        var answer = await Json.ReadOkAsync(await crm.PostAsync("/api/v1/plugins/webhooks/konnektive", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["pluginInstanceId"] = instance["id"]!.GetValue<long>().ToString(CultureInfo.InvariantCulture),
            ["secret"] = secret,
            ["orderId"] = "7301",
            ["customerType"] = "NEW_SALE",
            ["emailAddress"] = "trace.person@example.com",
        })));
        var deliveryId = answer["deliveries"]![0]!["id"]!.GetValue<long>().ToString(CultureInfo.InvariantCulture);

        // The listener above hears every hub in this test process, and another test's hub may
        // have a delivery of the same id (ids start at 1 in every database): of the attempt
        // spans for this id, the ones read are those of the trace whose ingest came from a plugin
        // and that holds a retry (this test's receiver answers the first attempt 503).
        await DeliveryScenario.WaitUntilAsync(
            () => Attempts(exported.Snapshot(), deliveryId).Count(a => (string?)a.GetTagItem("postback.outcome") == "succeeded") == 1, TimeSpan.FromSeconds(30),
            () => $"two attempt spans for delivery {deliveryId} in the trace of a plugin's ingest, the second succeeded; seen: "
                + string.Join("; ", exported.Snapshot().Where(a => a.OperationName == "postback.delivery.attempt").Select(a => $"{a.TraceId} {a.GetTagItem("postback.delivery.id")} {a.GetTagItem("postback.outcome")}")));

        List<Activity> trace;
        {
            var spans = exported.Snapshot();
            var attempts = Attempts(spans, deliveryId);
            Assert.Equal(2, attempts.Count);
            var ingest = Assert.Single(spans, a => a.OperationName == "postback.ingest" && a.TraceId == attempts[0].TraceId);
            Assert.Equal("plugin", ingest.GetTagItem("postback.source"));
            Assert.All(attempts, a =>
            {
                Assert.Equal(ingest.TraceId, a.TraceId);
                Assert.Equal(ingest.SpanId, a.ParentSpanId);
            });
            Assert.Equal(["retrying", "succeeded"], attempts.OrderBy(a => a.StartTimeUtc).Select(a => (string)a.GetTagItem("postback.outcome")!));
            // The ingest span is a child of the inbound request's own span.
            Assert.Contains(spans, a => a.SpanId == ingest.ParentSpanId && a.Source.Name == "Microsoft.AspNetCore");
            trace = spans.Where(a => a.TraceId == ingest.TraceId).ToList();
        }

        // The receiver gets exactly the request the profile describes: no trace headers added.
        Assert.All(receiver.Received, r => Assert.Null(r.Header("traceparent")));

        // Neither the plugin secret nor the customer's data is in any attribute of the trace.
        foreach (var span in trace)
        {
            foreach (var (key, value) in span.TagObjects)
            {
                var text = Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
                Assert.False(text.Contains(secret, StringComparison.Ordinal), $"{span.OperationName} {key} carries the plugin secret");
                Assert.False(text.Contains("trace.person", StringComparison.Ordinal), $"{span.OperationName} {key} carries the customer's e-mail");
                Assert.False(text.Contains("/hook", StringComparison.Ordinal), $"{span.OperationName} {key} carries the receiver's path");
            }
        }
    }

    private static List<Activity> Attempts(IReadOnlyList<Activity> exported, string deliveryId)
    {
        var pluginTraces = exported.Where(a => a.OperationName == "postback.ingest" && (string?)a.GetTagItem("postback.source") == "plugin")
            .Select(a => a.TraceId).ToHashSet();
        // This test's delivery is answered 503 once: its trace is the one with a retry in it.
        return exported.Where(a => a.OperationName == "postback.delivery.attempt" && (string?)a.GetTagItem("postback.delivery.id") == deliveryId
                && pluginTraces.Contains(a.TraceId))
            .GroupBy(a => a.TraceId)
            .Select(g => g.ToList())
            .FirstOrDefault(g => g.Any(a => (string?)a.GetTagItem("postback.outcome") == "retrying")) ?? [];
    }

    private sealed class SpanLog : ICollection<Activity>
    {
        private readonly List<Activity> _spans = [];

        public int Count
        {
            get
            {
                lock (_spans)
                {
                    return _spans.Count;
                }
            }
        }

        public bool IsReadOnly => false;

        public void Add(Activity item)
        {
            lock (_spans)
            {
                _spans.Add(item);
            }
        }

        public List<Activity> Snapshot()
        {
            lock (_spans)
            {
                return [.. _spans];
            }
        }

        public void Clear()
        {
            lock (_spans)
            {
                _spans.Clear();
            }
        }

        public bool Contains(Activity item) => Snapshot().Contains(item);

        public void CopyTo(Activity[] array, int arrayIndex) => Snapshot().CopyTo(array, arrayIndex);

        public bool Remove(Activity item)
        {
            lock (_spans)
            {
                return _spans.Remove(item);
            }
        }

        public IEnumerator<Activity> GetEnumerator() => Snapshot().GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
