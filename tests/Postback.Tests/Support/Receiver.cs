using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Postback.Tests.Support;

/// What arrived at the receiver, exactly: method, path, raw query, headers and raw body bytes.
public sealed record ReceivedRequest(string Method, string Path, string RawQuery, IReadOnlyDictionary<string, string> Headers, byte[] Body)
{
    public string BodyText => System.Text.Encoding.UTF8.GetString(Body);

    public string? Header(string name) => Headers.TryGetValue(name, out var v) ? v : null;
}

/// A real HTTP server on 127.0.0.1 (Kestrel, ephemeral port) standing in for a call center,
/// fulfillment house or ERP. It records every request and answers as the test tells it.
public sealed class Receiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<ReceivedRequest> _received = new();

    public Func<ReceivedRequest, (int Status, string Body)> Respond { get; set; } = _ => (200, "OK");

    /// When set, answers instead of Respond, and may take its time (the request is in flight
    /// at the receiver until it returns); the token fires when the sender goes away.
    public Func<ReceivedRequest, CancellationToken, Task<(int Status, string Body)>>? RespondAsync { get; set; }

    public TimeSpan Delay { get; set; } = TimeSpan.Zero;

    /// Sent as the Retry-After header when set.
    public string? RetryAfter { get; set; }

    private Receiver(WebApplication app) => _app = app;

    public static async Task<Receiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var receiver = new Receiver(app);
        app.Run(receiver.HandleAsync);
        await app.StartAsync();
        return receiver;
    }

    public Uri BaseUri => new(_app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

    public string Url(string path) => new Uri(BaseUri, path).ToString();

    public IReadOnlyList<ReceivedRequest> Received => [.. _received];

    private async Task HandleAsync(HttpContext context)
    {
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body);
        var request = new ReceivedRequest(
            context.Request.Method,
            context.Request.Path.Value ?? "",
            context.Request.QueryString.Value ?? "",
            context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase),
            body.ToArray());
        _received.Enqueue(request);
        if (Delay > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(Delay, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
        int status;
        string text;
        if (RespondAsync is { } respondAsync)
        {
            try
            {
                (status, text) = await respondAsync(request, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
        else
        {
            (status, text) = Respond(request);
        }
        context.Response.StatusCode = status;
        if (RetryAfter is not null)
        {
            context.Response.Headers.RetryAfter = RetryAfter;
        }
        await context.Response.WriteAsync(text);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
