using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Postback.Bench;

/// The hub's public API as the benchmark uses it: campaigns, export profiles, preview, and
/// order events (single and batch).
public sealed class HubApi : IDisposable
{
    private readonly HttpClient _http;

    public HubApi(Uri baseUri, string apiKey, int connections)
    {
        _http = new HttpClient(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = connections,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            UseProxy = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
        })
        {
            BaseAddress = new Uri(baseUri, "api/v1/"),
            Timeout = TimeSpan.FromSeconds(120),
        };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
    }

    public async Task<JsonNode> PostJsonAsync(string path, JsonNode body, CancellationToken ct)
    {
        using var content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        using var response = await _http.PostAsync(path, content, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new BenchException($"POST {path} answered {(int)response.StatusCode}: {Shorten(text)}");
        }
        return JsonNode.Parse(text) ?? throw new BenchException($"POST {path} answered no JSON");
    }

    public async Task<JsonNode> GetJsonAsync(string path, CancellationToken ct)
    {
        using var response = await _http.GetAsync(path, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        if (!response.IsSuccessStatusCode)
        {
            throw new BenchException($"GET {path} answered {(int)response.StatusCode}: {Shorten(text)}");
        }
        return JsonNode.Parse(text) ?? throw new BenchException($"GET {path} answered no JSON");
    }

    /// Posts a prepared event or batch body; returns the status and the number of deliveries
    /// the hub scheduled for it (from its answer).
    public async Task<(HttpStatusCode Status, int Deliveries, string? Error)> PostEventsAsync(string path, byte[] body, CancellationToken ct)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await _http.PostAsync(path, content, ct);
        var bytes = await response.Content.ReadAsByteArrayAsync(ct);
        if (response.StatusCode != HttpStatusCode.Accepted)
        {
            return (response.StatusCode, 0, Shorten(Encoding.UTF8.GetString(bytes)));
        }
        return (response.StatusCode, CountDeliveries(bytes), null);
    }

    private static int CountDeliveries(byte[] answer)
    {
        using var doc = JsonDocument.Parse(answer);
        var root = doc.RootElement;
        if (root.TryGetProperty("events", out var events))
        {
            var n = 0;
            foreach (var e in events.EnumerateArray())
            {
                n += e.GetProperty("deliveries").GetArrayLength();
            }
            return n;
        }
        return root.GetProperty("deliveries").GetArrayLength();
    }

    private static string Shorten(string s) => s.Length <= 600 ? s : s[..600] + "...";

    public void Dispose() => _http.Dispose();
}

