using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Options;
using Postback.ExportProfiles;
using Postback.Infrastructure;

namespace Postback.Outbound;

public sealed class OutboundBlockedException(string message) : HttpRequestException(message);

/// Guards outbound requests against SSRF: every address a host resolves to is checked at
/// connect time (so DNS rebinding cannot slip a private address past a check made earlier).
public static class NetworkGuard
{
    public static bool IsPrivate(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        if (IPAddress.IsLoopback(address) || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any) || address.Equals(IPAddress.Broadcast))
        {
            return true;
        }
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            var b = address.GetAddressBytes();
            return b[0] == 10
                || b[0] == 0
                || (b[0] == 100 && b[1] >= 64 && b[1] <= 127) // carrier-grade NAT
                || (b[0] == 169 && b[1] == 254)              // link-local, cloud metadata
                || (b[0] == 172 && b[1] >= 16 && b[1] <= 31)
                || (b[0] == 192 && b[1] == 168)
                || (b[0] == 192 && b[1] == 0 && b[2] == 0)
                || (b[0] == 198 && (b[1] == 18 || b[1] == 19))
                || b[0] >= 224;                               // multicast and reserved
        }
        if (address.IsIPv6LinkLocal || address.IsIPv6SiteLocal || address.IsIPv6Multicast || address.IsIPv6UniqueLocal)
        {
            return true;
        }
        // IPv6 forms that carry an IPv4 address a gateway or relay will reach on our behalf:
        // judged by the IPv4 address inside.
        var v6 = address.GetAddressBytes();
        if (v6.Length == 16)
        {
            if (v6[0] == 0x00 && v6[1] == 0x64 && v6[2] == 0xff && v6[3] == 0x9b)
            {
                // NAT64: 64:ff9b::/96 (well-known) embeds it in the last 32 bits; 64:ff9b:1::/48
                // is for networks' own translators, private by definition (RFC 8215).
                return (v6[4] == 0x00 && v6[5] == 0x01) || IsPrivate(new IPAddress(v6[12..16]));
            }
            if (v6[0] == 0x20 && v6[1] == 0x02)
            {
                // 6to4: 2002:AABB:CCDD::/48 routes to the IPv4 address AA.BB.CC.DD.
                return IsPrivate(new IPAddress(v6[2..6]));
            }
            if (v6[0] == 0x20 && v6[1] == 0x01 && v6[2] == 0x00 && v6[3] == 0x00)
            {
                // Teredo: 2001:0::/32, the server's IPv4 in bits 32-63 and the client's,
                // inverted, in the last 32 bits.
                var client = v6[12..16].Select(b => (byte)~b).ToArray();
                return IsPrivate(new IPAddress(v6[4..8])) || IsPrivate(new IPAddress(client));
            }
            if (v6.AsSpan(0, 12).IndexOfAnyExcept((byte)0) < 0)
            {
                // IPv4-compatible ::a.b.c.d (deprecated, but a stack may still route it).
                return IsPrivate(new IPAddress(v6[12..16]));
            }
        }
        return false;
    }

    public static async ValueTask<Stream> ConnectAsync(DnsEndPoint endPoint, bool allowPrivate, CancellationToken ct)
    {
        var addresses = IPAddress.TryParse(endPoint.Host, out var literal)
            ? [literal]
            : await Dns.GetHostAddressesAsync(endPoint.Host, ct);
        var allowed = allowPrivate ? addresses : addresses.Where(a => !IsPrivate(a)).ToArray();
        if (addresses.Length == 0)
        {
            // The name's problem (its DNS may be fixed), not the guard's.
            throw new HttpRequestException($"{endPoint.Host} does not resolve to any address.");
        }
        if (allowed.Length == 0)
        {
            throw new OutboundBlockedException(
                $"{endPoint.Host} resolves to a private or loopback address ({addresses[0]}); set Postback:Outbound:AllowPrivateNetworks to allow it.");
        }
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(allowed, endPoint.Port, ct);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}

public sealed record OutboundResponse(int Status, IReadOnlyList<KeyValuePair<string, string>> Headers, string BodyExcerpt, bool BodyTruncated)
{
    [System.Text.Json.Serialization.JsonIgnore]
    public TimeSpan? RetryAfter { get; init; }
}

public sealed record OutboundResult(OutboundResponse? Response, double DurationMs, string? Error)
{
    public bool Succeeded => Response is { Status: >= 200 and < 300 };

    /// The request never left this process and never will as it stands (a header .NET cannot
    /// send, a URL the SSRF guard refuses): nothing the receiver did, so it must not count
    /// toward the receiver's circuit, and retrying cannot help.
    public bool NeverSent { get; init; }
}

/// Sends rendered requests exactly as rendered: no redirects followed, no cookies, no trace
/// headers added, a bounded read of the answer.
public sealed class OutboundSender(HttpClient client, IOptions<PostbackOptions> options, TimeProvider time)
{
    public const string ClientName = "outbound";
    public const string UserAgent = "Postback/1.0";
    public const int MaxExcerptBytes = 4096;
    public const int MaxExcerptHeaders = 30;

    public async Task<OutboundResult> SendAsync(RenderedRequest request, CancellationToken ct)
    {
        HttpRequestMessage message;
        try
        {
            message = ToMessage(request);
        }
        catch (Exception e) when (e is UriFormatException or FormatException or ArgumentException or InvalidOperationException)
        {
            return new OutboundResult(null, 0, "the request cannot be built: " + e.Message) { NeverSent = true };
        }
        if (request.Headers.FirstOrDefault(h => HeaderRules.ValueProblem(h.Value) is not null) is { Key: not null } bad)
        {
            message.Dispose();
            return new OutboundResult(null, 0, $"header {bad.Key}: {HeaderRules.ValueProblem(bad.Value)}") { NeverSent = true };
        }
        using var _ = message;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(options.Value.Outbound.TimeoutSeconds));
        var started = time.GetTimestamp();
        try
        {
            using var response = await client.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            var headers = response.Headers.Concat(response.Content.Headers)
                .Take(MaxExcerptHeaders)
                .Select(h => new KeyValuePair<string, string>(h.Key, Printable(Text.Clip(string.Join(", ", h.Value), 501, "…"))))
                .ToList();
            string excerpt;
            bool truncated;
            string? bodyError = null;
            try
            {
                (excerpt, truncated) = await ReadExcerptAsync(response.Content, timeout.Token);
            }
            catch (IOException e)
            {
                // The receiver answered (its status stands) but the body broke off.
                (excerpt, truncated, bodyError) = ("", true, "the response body broke off: " + e.Message);
            }
            return new OutboundResult(
                new OutboundResponse((int)response.StatusCode, headers, excerpt, truncated) { RetryAfter = RetryAfterOf(response) },
                Elapsed(started),
                bodyError);
        }
        catch (IOException e) when (!ct.IsCancellationRequested)
        {
            return new OutboundResult(null, Elapsed(started), "the connection failed: " + e.Message);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return new OutboundResult(null, Elapsed(started), $"timed out after {options.Value.Outbound.TimeoutSeconds} s");
        }
        catch (HttpRequestException e)
        {
            var blocked = e as OutboundBlockedException ?? e.InnerException as OutboundBlockedException;
            return new OutboundResult(null, Elapsed(started), blocked?.Message ?? Describe(e)) { NeverSent = blocked is not null };
        }
    }

    private TimeSpan? RetryAfterOf(HttpResponseMessage response) => response.Headers.RetryAfter switch
    {
        { Delta: { } delta } => delta,
        { Date: { } date } => date - time.GetUtcNow() is { } wait && wait > TimeSpan.Zero ? wait : TimeSpan.Zero,
        _ => null,
    };

    private double Elapsed(long started) => time.GetElapsedTime(started).TotalMilliseconds;

    private static string Describe(HttpRequestException e) =>
        e.HttpRequestError switch
        {
            HttpRequestError.NameResolutionError => "the host name does not resolve",
            HttpRequestError.ConnectionError => "could not connect: " + (e.InnerException?.Message ?? e.Message),
            HttpRequestError.SecureConnectionError => "TLS handshake failed: " + (e.InnerException?.Message ?? e.Message),
            _ => e.InnerException?.Message ?? e.Message,
        };

    public static HttpRequestMessage ToMessage(RenderedRequest request)
    {
        var message = new HttpRequestMessage(new HttpMethod(request.Method), request.Url);
        HttpContent? content = request.Body is null ? null : new ByteArrayContent(Encoding.UTF8.GetBytes(request.Body));
        var hasUserAgent = false;
        foreach (var (name, value) in request.Headers)
        {
            hasUserAgent |= name.Equals("User-Agent", StringComparison.OrdinalIgnoreCase);
            if (IsContentHeader(name))
            {
                content ??= new ByteArrayContent([]);
                content.Headers.TryAddWithoutValidation(name, value);
            }
            else
            {
                message.Headers.TryAddWithoutValidation(name, value);
            }
        }
        if (!hasUserAgent)
        {
            message.Headers.TryAddWithoutValidation("User-Agent", UserAgent);
        }
        message.Content = content;
        return message;
    }

    private static bool IsContentHeader(string name) =>
        name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase) || name.Equals("Expires", StringComparison.OrdinalIgnoreCase)
        || name.Equals("Last-Modified", StringComparison.OrdinalIgnoreCase) || name.Equals("Allow", StringComparison.OrdinalIgnoreCase);

    private static async Task<(string, bool)> ReadExcerptAsync(HttpContent content, CancellationToken ct)
    {
        await using var stream = await content.ReadAsStreamAsync(ct);
        var buffer = new byte[MaxExcerptBytes + 1];
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(read), ct);
            if (n == 0)
            {
                break;
            }
            read += n;
        }
        var truncated = read > MaxExcerptBytes;
        return (Printable(Encoding.UTF8.GetString(buffer, 0, Math.Min(read, MaxExcerptBytes))), truncated);
    }

    // NUL cannot be stored in a PostgreSQL text column; a binary answer (a GIF pixel) has them.
    private static string Printable(string s) => s.Contains('\0') ? s.Replace('\0', '\uFFFD') : s;


    /// The request as it goes on the wire (HTTP/1.1), for previews.
    public static string ToRawHttp(RenderedRequest request)
    {
        var uri = new Uri(request.Url);
        var sb = new StringBuilder();
        sb.Append(request.Method).Append(' ').Append(uri.PathAndQuery).Append(" HTTP/1.1\r\n");
        sb.Append("Host: ").Append(uri.IsDefaultPort ? uri.Host : uri.Authority).Append("\r\n");
        var hasUserAgent = false;
        foreach (var (name, value) in request.Headers)
        {
            hasUserAgent |= name.Equals("User-Agent", StringComparison.OrdinalIgnoreCase);
            sb.Append(name).Append(": ").Append(value).Append("\r\n");
        }
        if (!hasUserAgent)
        {
            sb.Append("User-Agent: ").Append(UserAgent).Append("\r\n");
        }
        if (request.Body is not null)
        {
            sb.Append("Content-Length: ").Append(Encoding.UTF8.GetByteCount(request.Body)).Append("\r\n");
        }
        sb.Append("\r\n");
        if (request.Body is not null)
        {
            sb.Append(request.Body);
        }
        return sb.ToString();
    }
}

public static class OutboundSetup
{
    /// The one HTTP client every outbound request (deliveries, confirmations) goes through.
    public static IServiceCollection AddOutbound(this IServiceCollection services)
    {
        services.AddHttpClient<OutboundSender>(OutboundSender.ClientName)
            .ConfigurePrimaryHttpMessageHandler(sp =>
            {
                var allowPrivate = sp.GetRequiredService<IOptions<PostbackOptions>>().Value.Outbound.AllowPrivateNetworks;
                return new SocketsHttpHandler
                {
                    AllowAutoRedirect = false,
                    UseCookies = false,
                    UseProxy = false,
                    AutomaticDecompression = DecompressionMethods.None,
                    ActivityHeadersPropagator = null,
                    PooledConnectionLifetime = TimeSpan.FromMinutes(2),
                    ConnectTimeout = TimeSpan.FromSeconds(10),
                    MaxConnectionsPerServer = 256,
                    ConnectCallback = (context, ct) => NetworkGuard.ConnectAsync(context.DnsEndPoint, allowPrivate, ct),
                };
            })
            .ConfigureHttpClient(c => c.Timeout = Timeout.InfiniteTimeSpan)
            // The attempt log and the hub's own log lines say what was sent and how it ended; the
            // client factory's per-request log scopes and lines (URLs with their query strings)
            // cost every delivery CPU and say nothing more.
            .RemoveAllLoggers();
        return services;
    }
}
