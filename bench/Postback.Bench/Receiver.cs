using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using System.Text.Json;

namespace Postback.Bench;

/// What the receiver saw of one delivery: the order it was for, which profile sent it (0 for a
/// GET, 1 for a POST: the workloads give each profile its own method), the bench's send
/// timestamp carried through the hub in the order (mapped to sent_at) and the receive
/// timestamp, both Stopwatch ticks of this process.
public readonly record struct Arrival(long OrderId, int Profile, long SentAt, long ReceivedAt);

/// The postback receiver: a minimal Kestrel server on 127.0.0.1 that answers 200 "OK" at once.
/// Deliveries (requests carrying X-Postback-Delivery-Id) are counted per phase and their
/// arrival recorded; requests carrying X-Bench-Raw (the raw-ceiling load) only counted. Both
/// kinds get the same work: read order_id and sent_at (from the query of a GET, from the JSON
/// body of a POST), count, answer.
public sealed class Receiver : IAsyncDisposable
{
    /// Order ids of phase p are p * PhaseSpan + i, so an arrival tells its phase.
    public const long PhaseSpan = 10_000_000;
    public const int Phases = 11;
    public const string DeliveryIdHeader = "X-Postback-Delivery-Id";
    public const string RawHeader = "X-Bench-Raw";

    private static readonly byte[] Ok = "OK"u8.ToArray();

    private readonly WebApplication _app;
    private readonly Arrival[] _arrivals;
    private int _next;
    private long _raw;
    private long _other;
    private readonly long[] _perPhase = new long[Phases];
    private long _failOrder = -1;
    private long _failUntil;
    private long _failed;

    private Receiver(WebApplication app, int capacity)
    {
        _app = app;
        _arrivals = new Arrival[capacity];
    }

    public static async Task<Receiver> StartAsync(int capacity)
    {
        var builder = WebApplication.CreateSlimBuilder();
        // Two ports, one per profile: a call center and a fulfillment service are two receivers,
        // each with its own share of the hub's in-flight limit per endpoint.
        builder.WebHost.UseKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(IPAddress.Loopback, 0);
            k.Listen(IPAddress.Loopback, 0);
        });
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var receiver = new Receiver(app, capacity);
        app.Run(receiver.Handle);
        await app.StartAsync();
        return receiver;
    }

    public Uri BaseUri => Endpoints[0];

    /// The receiver's addresses: profile i of a workload posts to Endpoints[i % 2].
    public IReadOnlyList<Uri> Endpoints =>
        _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Order(StringComparer.Ordinal).Select(a => new Uri(a)).ToList();

    public long Raw => Interlocked.Read(ref _raw);

    public long Other => Interlocked.Read(ref _other);

    public long Delivered(int phase) => Interlocked.Read(ref _perPhase[phase]);

    /// Answers 500 to every delivery of this order until the time (Stopwatch ticks) has passed.
    public void FailOrder(long orderId, long untilTimestamp)
    {
        Interlocked.Exchange(ref _failUntil, untilTimestamp);
        Interlocked.Exchange(ref _failOrder, orderId);
    }

    public long Failed => Interlocked.Read(ref _failed);

    /// The recorded arrivals of one phase (call once its deliveries are all in).
    public List<Arrival> Arrivals(int phase)
    {
        var n = Math.Min(Volatile.Read(ref _next), _arrivals.Length);
        var list = new List<Arrival>();
        for (var i = 0; i < n; i++)
        {
            var a = _arrivals[i];
            if (a.OrderId / PhaseSpan == phase)
            {
                list.Add(a);
            }
        }
        return list;
    }

    private async Task Handle(HttpContext context)
    {
        var received = Stopwatch.GetTimestamp();
        var request = context.Request;
        long orderId, sentAt;
        int profile;
        if (HttpMethods.IsPost(request.Method))
        {
            profile = 1;
            (orderId, sentAt) = await ReadBodyAsync(request);
        }
        else
        {
            profile = 0;
            var query = request.Query;
            long.TryParse(query["order_id"], NumberStyles.None, CultureInfo.InvariantCulture, out orderId);
            long.TryParse(query["sent_at"].ToString().TrimStart('t'), NumberStyles.None, CultureInfo.InvariantCulture, out sentAt);
        }
        if (orderId == Interlocked.Read(ref _failOrder) && received < Interlocked.Read(ref _failUntil))
        {
            Interlocked.Increment(ref _failed);
            context.Response.StatusCode = 500;
            return;
        }
        if (request.Headers.ContainsKey(DeliveryIdHeader))
        {
            var slot = Interlocked.Increment(ref _next) - 1;
            if (slot < _arrivals.Length)
            {
                _arrivals[slot] = new Arrival(orderId, profile, sentAt, received);
            }
            var phase = orderId / PhaseSpan;
            // After the arrival is written: a count that reached its target means every
            // arrival of the phase is readable.
            Interlocked.Increment(ref _perPhase[phase is >= 0 and < Phases ? phase : 0]);
        }
        else if (request.Headers.ContainsKey(RawHeader))
        {
            Interlocked.Increment(ref _raw);
        }
        else
        {
            Interlocked.Increment(ref _other);
        }
        var response = context.Response;
        response.StatusCode = 200;
        response.ContentType = "text/plain";
        response.ContentLength = Ok.Length;
        await response.Body.WriteAsync(Ok);
    }

    // A JSON object body: order_id and sent_at are strings (every mapped value is).
    private static async Task<(long OrderId, long SentAt)> ReadBodyAsync(HttpRequest request)
    {
        var body = await request.BodyReader.ReadAtLeastAsync(64 * 1024);
        var buffer = body.Buffer;
        long orderId = 0, sentAt = 0;
        try
        {
            var reader = new Utf8JsonReader(buffer);
            while (reader.Read())
            {
                if (reader.TokenType != JsonTokenType.PropertyName || reader.CurrentDepth != 1)
                {
                    continue;
                }
                if (reader.ValueTextEquals("order_id"u8) && reader.Read())
                {
                    long.TryParse(reader.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out orderId);
                }
                else if (reader.ValueTextEquals("sent_at"u8) && reader.Read())
                {
                    long.TryParse(reader.GetString()?.TrimStart('t'), NumberStyles.None, CultureInfo.InvariantCulture, out sentAt);
                }
            }
        }
        catch (JsonException)
        {
        }
        finally
        {
            request.BodyReader.AdvanceTo(buffer.End);
        }
        return (orderId, sentAt);
    }

    public async ValueTask DisposeAsync()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _app.StopAsync(stop.Token);
        await _app.DisposeAsync();
    }
}
