using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Postback.Notifications;
using Postback.Orders;
using Postback.Organizations;
using Postback.Outbound;
using Postback.Tests.Support;

namespace Postback.Tests.Hardening;

/// Issue 12, finding 8: the smaller gaps, one test each.
public sealed partial class SmallerGapsTests
{
    [Theory]
    [InlineData("64:ff9b::7f00:1", true)]          // NAT64 of 127.0.0.1
    [InlineData("64:ff9b::a9fe:a9fe", true)]       // NAT64 of 169.254.169.254 (cloud metadata)
    [InlineData("64:ff9b:1::a00:1", true)]         // local-use NAT64 prefix
    [InlineData("64:ff9b::808:808", false)]        // NAT64 of 8.8.8.8
    [InlineData("2002:7f00:1::", true)]            // 6to4 of 127.0.0.1
    [InlineData("2002:c0a8:101::1", true)]         // 6to4 of 192.168.1.1
    [InlineData("2002:808:808::1", false)]         // 6to4 of 8.8.8.8
    [InlineData("2001:0:a00:1::", true)]           // Teredo via server 10.0.0.1
    [InlineData("2001:0:4136:e378:8000:63bf:80ff:fffe", true)] // Teredo client 127.0.0.1 (inverted)
    [InlineData("2001:0:4136:e378:8000:63bf:f7f7:f7f7", false)] // Teredo client 8.8.8.8
    [InlineData("::7f00:1", true)]                 // IPv4-compatible 127.0.0.1
    [InlineData("2606:4700::1111", false)]
    public void The_ssrf_guard_judges_ipv6_forms_by_the_ipv4_address_inside(string address, bool isPrivate)
    {
        Assert.Equal(isPrivate, NetworkGuard.IsPrivate(IPAddress.Parse(address)));
    }

    [Fact]
    public async Task A_profile_url_of_an_embedded_private_address_and_a_mapping_of_the_hubs_own_headers_are_refused_at_save()
    {
        await using var hub = await HubFactory.StartAsync(allowPrivateNetworks: false);
        using var api = hub.Api();
        object Profile(string url, string header) => new
        {
            name = "p", postbackUrl = url, exportDelayMinutes = 0,
            mappings = new object[] { new { exportName = header, @static = "x" } },
            routes = new[] { new { customerTypes = new[] { "new_sale" } } },
        };

        await Json.AssertProblemAsync(await api.PostJsonAsync("/api/v1/export-profiles", Profile("http://[64:ff9b::7f00:1]/in", "header:X-Token")), 400, "postbackUrl");
        await Json.AssertProblemAsync(await api.PostJsonAsync("/api/v1/export-profiles", Profile("http://[2002:a9fe:a9fe::1]/in", "header:X-Token")), 400, "postbackUrl");
        foreach (var reserved in new[] { "header:X-Postback-Delivery-Id", "header:webhook-id", "header:Webhook-Signature", "header:webhook-timestamp" })
        {
            var reason = await Json.AssertProblemAsync(await api.PostJsonAsync("/api/v1/export-profiles", Profile("https://erp.example.com/in", reserved)), 400, "mappings[0].exportName");
            Assert.Contains("set by Postback itself", reason, StringComparison.Ordinal);
        }
        Assert.Equal(201, (int)(await api.PostJsonAsync("/api/v1/export-profiles", Profile("https://erp.example.com/in", "header:X-Token"))).StatusCode);
    }

    [Fact]
    public async Task A_repeated_top_level_key_of_an_event_or_a_batch_is_refused()
    {
        await using var hub = await HubFactory.StartAsync();
        using var api = hub.Api();

        var single = await api.PostRawAsync("/api/v1/events", """{"type": "new_sale", "type": "cancel", "order": {"orderId": 5001}}""");
        Assert.Contains("more than once", await Json.AssertProblemAsync(single, 400, "type"), StringComparison.Ordinal);
        var order = await api.PostRawAsync("/api/v1/events", """{"type": "new_sale", "order": {"orderId": 5002}, "order": {"orderId": 5003}}""");
        await Json.AssertProblemAsync(order, 400, "order");
        var batch = await api.PostRawAsync("/api/v1/events/batch", """{"events": [{"type": "new_sale", "order": {"orderId": 5004}}], "events": []}""");
        await Json.AssertProblemAsync(batch, 400, "events");
        Assert.Equal(0, await hub.WithDbAsync(db => db.Orders.CountAsync()));
    }

    [Fact]
    public async Task Behind_a_configured_proxy_the_login_throttle_keys_on_the_forwarded_client_address()
    {
        await using var proxied = await HubFactory.StartAsync(settings: new Dictionary<string, string?> { ["Postback:ForwardedHeaders:KnownProxies:0"] = "127.0.0.1" });
        for (var i = 0; i < 10; i++)
        {
            Assert.Contains("not a valid API key", await LoginAsync(proxied, "wrong", "203.0.113.5"), StringComparison.Ordinal);
        }
        Assert.Contains("Too many failed attempts", await LoginAsync(proxied, HubFactory.ApiKey, "203.0.113.5"), StringComparison.Ordinal);
        // Another client behind the same proxy is not locked out.
        Assert.Equal("redirect /admin", await LoginAsync(proxied, HubFactory.ApiKey, "203.0.113.6"));

        // Without the option the header is not believed: a client cannot dodge the throttle by
        // sending another address with each try.
        await using var direct = await HubFactory.StartAsync();
        for (var i = 0; i < 10; i++)
        {
            await LoginAsync(direct, "wrong", $"198.51.100.{i}");
        }
        Assert.Contains("Too many failed attempts", await LoginAsync(direct, HubFactory.ApiKey, "198.51.100.99"), StringComparison.Ordinal);
    }

    private static async Task<string> LoginAsync(HubFactory hub, string secret, string forwardedFor)
    {
        using var api = hub.Api(key: null);
        using var handler = new HttpClientHandler { CookieContainer = new CookieContainer(), AllowAutoRedirect = false };
        using var client = new HttpClient(handler) { BaseAddress = api.BaseAddress };
        var form = await client.GetStringAsync("/admin/login");
        var token = TokenField().Match(form).Groups[1].Value;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/admin/login")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["secret"] = secret, ["__RequestVerificationToken"] = token }),
        };
        request.Headers.Add("X-Forwarded-For", forwardedFor);
        using var response = await client.SendAsync(request);
        return response.StatusCode == HttpStatusCode.Redirect
            ? "redirect " + response.Headers.Location
            : WebUtility.HtmlDecode(await response.Content.ReadAsStringAsync());
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"")]
    private static partial Regex TokenField();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_smtp_password_goes_only_over_tls_unless_plain_auth_is_allowed(bool allowPlainAuth)
    {
        await using var smtp = await PlainSmtpServer.StartAsync();
        await using var hub = await HubFactory.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Postback:Smtp:Host"] = "127.0.0.1",
            ["Postback:Smtp:Port"] = smtp.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Postback:Smtp:From"] = "hub@example.com",
            ["Postback:Smtp:Username"] = "hub",
            ["Postback:Smtp:Password"] = "smtp-secret-password",
            ["Postback:Smtp:PollMilliseconds"] = "100",
            ["Postback:Smtp:AllowPlainAuth"] = allowPlainAuth ? "true" : "false",
        });
        await hub.WithDbAsync(async db =>
        {
            db.EmailOutbox.Add(new OutboxEmail
            {
                OrganizationId = await db.Organizations.Select(o => o.Id).FirstAsync(),
                DedupKey = "plain-auth", Recipient = "ops@example.com", Subject = "alert", Body = "body", DueAt = DateTimeOffset.UtcNow, CreatedAt = DateTimeOffset.UtcNow,
            });
            return await db.SaveChangesAsync();
        });

        // The sender tried: the server saw it connect, and the mail's outcome is recorded.
        await DeliveryScenario.WaitUntilAsync(async () => await hub.WithDbAsync(db => db.EmailOutbox.AnyAsync(m => m.Status == EmailStatus.Sent || m.LastError != null)),
            TimeSpan.FromSeconds(60), () => "the e-mail was not tried");
        var mail = await hub.WithDbAsync(db => db.EmailOutbox.SingleAsync());
        if (allowPlainAuth)
        {
            Assert.Equal(EmailStatus.Sent, mail.Status);
            Assert.Contains(smtp.Commands, c => c.StartsWith("AUTH", StringComparison.Ordinal));
        }
        else
        {
            Assert.Equal(EmailStatus.Pending, mail.Status);
            Assert.Contains("AllowPlainAuth", mail.LastError, StringComparison.Ordinal);
            Assert.Contains(smtp.Commands, c => c.StartsWith("EHLO", StringComparison.Ordinal));
            Assert.DoesNotContain(smtp.Commands, c => c.StartsWith("AUTH", StringComparison.Ordinal));
        }
    }

    /// A real SMTP server on loopback that offers AUTH PLAIN and no STARTTLS, as a misconfigured
    /// relay does; it records every command line.
    private sealed class PlainSmtpServer : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly System.Collections.Concurrent.ConcurrentQueue<string> _commands = new();
        private Task _loop = Task.CompletedTask;

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public IReadOnlyList<string> Commands => [.. _commands];

        public static Task<PlainSmtpServer> StartAsync()
        {
            var server = new PlainSmtpServer();
            server._listener.Start();
            server._loop = server.AcceptAsync();
            return Task.FromResult(server);
        }

        private async Task AcceptAsync()
        {
            try
            {
                while (true)
                {
                    var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    _ = ServeAsync(client);
                }
            }
            catch (OperationCanceledException)
            {
            }
        }

        private async Task ServeAsync(TcpClient client)
        {
            using var _ = client;
            var stream = client.GetStream();
            using var reader = new StreamReader(stream, Encoding.ASCII);
            await using var writer = new StreamWriter(stream, Encoding.ASCII) { NewLine = "\r\n", AutoFlush = true };
            try
            {
                await writer.WriteLineAsync("220 plain.example ESMTP");
                var inData = false;
                while (await reader.ReadLineAsync(_stop.Token) is { } line)
                {
                    if (inData)
                    {
                        if (line == ".")
                        {
                            inData = false;
                            await writer.WriteLineAsync("250 2.0.0 queued");
                        }
                        continue;
                    }
                    _commands.Enqueue(line);
                    var verb = line.Split(' ')[0].ToUpperInvariant();
                    await writer.WriteLineAsync(verb switch
                    {
                        "EHLO" => "250-plain.example\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME",
                        "HELO" => "250 plain.example",
                        "AUTH" => "235 2.7.0 accepted",
                        "MAIL" or "RCPT" or "RSET" or "NOOP" => "250 2.1.0 ok",
                        "DATA" => "354 go ahead",
                        "QUIT" => "221 bye",
                        _ => "502 5.5.2 not implemented",
                    });
                    inData = verb == "DATA";
                    if (verb == "QUIT")
                    {
                        return;
                    }
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
            {
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            await _loop;
            _stop.Dispose();
        }
    }
}
