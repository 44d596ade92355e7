using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Time.Testing;
using Postback.Organizations;
using Postback.Tests.Support;

namespace Postback.Tests.Confirmations;

/// The order confirmation webhook end to end: the real hub (fake clock) confirming orders at a
/// real receiver on 127.0.0.1, and e-mailing its alerts to a real SMTP server on 127.0.0.1.
public sealed partial class ConfirmationWebhookTests : IAsyncLifetime
{
    public const long CompanyId = 6316;
    public const string OrganizationName = "Peacock Farms";
    public const string Token = "erp-token-6316";
    public static readonly string[] Alerted = ["sales@peacock.example", "ops@peacock.example"];

    private readonly string _directory = DeliveryScenario.TempDirectory("confirm");
    private readonly List<IAsyncDisposable> _owned = [];
    private static long _nextOrder = 6900;

    public FakeTimeProvider Time { get; } = new(DateTimeOffset.UtcNow);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            await _owned[i].DisposeAsync();
        }
        DeliveryScenario.DeleteDirectory(_directory);
    }

    private async Task<T> Own<T>(T thing) where T : IAsyncDisposable
    {
        _owned.Add(thing);
        return await Task.FromResult(thing);
    }

    private async Task<string> ConnectionStringAsync(StorageKind storage) => storage == StorageKind.Sqlite
        ? ConfirmationHub.SqliteConnectionString(_directory)
        : await PostgresServer.CreateDatabaseAsync("pb_confirm");

    /// A hub whose organization is company 6316 and whose webhook points at the receiver.
    private async Task<(ConfirmationHub Hub, HttpClient Api)> HubAsync(
        Receiver receiver, int smtpPort, StorageKind storage = StorageKind.Sqlite, IReadOnlyDictionary<string, string?>? settings = null,
        string? connectionString = null)
    {
        var hub = await Own(ConfirmationHub.Start(Time, connectionString ?? await ConnectionStringAsync(storage), storage, smtpPort, settings));
        await hub.WithDbAsync(async db =>
        {
            var organization = await db.Organizations.SingleAsync();
            organization.CompanyId = CompanyId;
            organization.Name = OrganizationName;
            return await db.SaveChangesAsync();
        });
        var api = hub.Api();
        var put = await api.PutJsonAsync("/api/v1/settings/order-confirmation-webhook", new
        {
            enabled = true,
            url = receiver.Url("/confirm"),
            authenticationToken = Token,
            notificationEmails = Alerted,
        });
        await Json.ReadOkAsync(put);
        return (hub, api);
    }

    public static async Task<long> OrderAsync(HttpClient api, string? customerId = null)
    {
        var orderId = Interlocked.Increment(ref _nextOrder);
        var response = await api.PostJsonAsync("/api/v1/events", new { type = "new_sale", order = new { orderId, customerId = customerId ?? $"CUST-{orderId}" } });
        await Json.ReadOkAsync(response, System.Net.HttpStatusCode.Accepted);
        return orderId;
    }

    public static async Task<JsonNode> ConfirmationAsync(HttpClient api, long orderId) =>
        await Json.ReadOkAsync(await api.GetAsync($"/api/v1/orders/{orderId}/confirmation"));

    public static async Task<JsonNode> SettledAsync(HttpClient api, long orderId, string status, int attempts = 1)
    {
        JsonNode? detail = null;
        await DeliveryScenario.WaitUntilAsync(
            async () =>
            {
                detail = await ConfirmationAsync(api, orderId);
                // The confirmation and its attempts are read one after the other: an attempt
                // recorded in between shows up in the list but not yet on the confirmation, so
                // only an answer whose two parts agree counts.
                var confirmation = detail["confirmation"]!;
                var round = confirmation["round"]!.GetValue<int>();
                var list = detail["attempts"]!.AsArray();
                return confirmation["status"]!.GetValue<string>() == status && list.Count >= attempts
                    && list.Count(a => a!["round"]!.GetValue<int>() == round) == confirmation["attempts"]!.GetValue<int>();
            },
            TimeSpan.FromSeconds(30), () => $"order {orderId} is not {status} after {attempts} attempt(s): {detail?.ToJsonString()}", 25);
        return detail!;
    }

    private static async Task<List<ReceivedEmail>> MailAsync(SmtpSink smtp, int count)
    {
        await DeliveryScenario.WaitUntilAsync(() => Sent(smtp).Count >= count, TimeSpan.FromSeconds(30),
            () => $"{Sent(smtp).Count} of {count} e-mails arrived", 25);
        return Sent(smtp);
    }

    [Theory]
    [InlineData(StorageKind.Sqlite)]
    [InlineData(StorageKind.Postgres)]
    public async Task A_confirmed_order_shows_the_receivers_message_and_its_history(StorageKind storage)
    {
        var receiver = await Own(await Receiver.StartAsync());
        receiver.Respond = _ => (200, """{ "status":"1", "message":"Synced as SO-6908" }""");
        var smtp = await Own(await SmtpSink.StartAsync());
        var (_, api) = await HubAsync(receiver, smtp.Port, storage);
        var orderId = await OrderAsync(api, "CUST-A");

        var accepted = await Json.ReadOkAsync(await api.PostAsync($"/api/v1/orders/{orderId}/confirm", null), System.Net.HttpStatusCode.Accepted);
        Assert.Equal("pending", accepted["status"]!.GetValue<string>());

        var detail = await SettledAsync(api, orderId, "confirmed");
        var arrived = Assert.Single(receiver.Received);
        Assert.Equal("POST", arrived.Method);
        Assert.Equal("/confirm", arrived.Path);
        Assert.Equal("application/json", arrived.Header("Content-Type"));
        Assert.Equal(Token, arrived.Header("authenticationToken"));
        Assert.Equal($$"""{"companyId":{{CompanyId}},"orderId":{{orderId}}}""", arrived.BodyText);

        // The order shows its confirmation state, the receiver's words and the time.
        var order = await Json.ReadOkAsync(await api.GetAsync($"/api/v1/orders/{orderId}"));
        var confirmation = order["confirmation"]!;
        Assert.Equal("confirmed", confirmation["status"]!.GetValue<string>());
        Assert.Equal("Synced as SO-6908", confirmation["message"]!.GetValue<string>());
        Assert.Null(confirmation["error"]);
        Assert.Equal(Time.GetUtcNow(), confirmation["statusAt"]!.GetValue<DateTimeOffset>(), TimeSpan.FromMilliseconds(1));

        // The attempt log keeps the request with the token masked, and the answer.
        var attempt = Assert.Single(detail["attempts"]!.AsArray())!;
        Assert.True(attempt["succeeded"]!.GetValue<bool>());
        Assert.Equal("POST", attempt["request"]!["method"]!.GetValue<string>());
        Assert.Equal(arrived.BodyText, attempt["request"]!["body"]!.GetValue<string>());
        var headers = attempt["request"]!["headers"]!.AsArray();
        Assert.Contains(headers, h => h!["key"]!.GetValue<string>() == "authenticationToken" && h["value"]!.GetValue<string>() == "********");
        Assert.DoesNotContain(Token, detail.ToJsonString());
        Assert.Equal(200, attempt["response"]!["status"]!.GetValue<int>());
        Assert.Contains("Synced as SO-6908", attempt["response"]!["bodyExcerpt"]!.GetValue<string>());

        // The customer's history links to it, like an export's entry does.
        var history = (await Json.ReadOkAsync(await api.GetAsync("/api/v1/customers/CUST-A/history"))).AsArray();
        var entry = Assert.Single(history)!;
        Assert.Equal("confirmation", entry["kind"]!.GetValue<string>());
        Assert.Equal("confirmed", entry["status"]!.GetValue<string>());
        Assert.Equal(orderId, entry["orderId"]!.GetValue<long>());
        Assert.Equal($"/api/v1/orders/{orderId}/confirmation", entry["link"]!.GetValue<string>());
        Assert.Contains("Synced as SO-6908", entry["message"]!.GetValue<string>());

        // Confirming again does not send again: that is what reconfirm is for.
        var again = await Json.ReadOkAsync(await api.PostAsync($"/api/v1/orders/{orderId}/confirm", null));
        Assert.Equal("confirmed", again["status"]!.GetValue<string>());
        Assert.Empty(smtp.Received);
        Assert.Single(receiver.Received);
    }

    [Theory]
    [InlineData(StorageKind.Sqlite)]
    [InlineData(StorageKind.Postgres)]
    public async Task Status_0_fails_at_once_emails_every_address_and_reconfirm_clears_it(StorageKind storage)
    {
        var receiver = await Own(await Receiver.StartAsync());
        receiver.Respond = _ => (200, """{"status":"0","message":"Customer 6908 does not exist in the ERP"}""");
        var smtp = await Own(await SmtpSink.StartAsync());
        var (_, api) = await HubAsync(receiver, smtp.Port, storage);
        var orderId = await OrderAsync(api, "CUST-B");

        await api.PostAsync($"/api/v1/orders/{orderId}/confirm", null);
        var detail = await SettledAsync(api, orderId, "failed");
        var confirmation = detail["confirmation"]!;
        Assert.Equal("Customer 6908 does not exist in the ERP", confirmation["message"]!.GetValue<string>());
        Assert.Equal("the receiver answered status 0", confirmation["error"]!.GetValue<string>());
        Assert.Null(confirmation["nextAttemptAt"]);

        // One e-mail to each notification address, naming the order, the company, the
        // receiver's message and how to reconfirm.
        var mail = await MailAsync(smtp, 2);
        Assert.Equal(Alerted.Order(), mail.SelectMany(m => m.RcptTo).Order());
        foreach (var email in mail)
        {
            Assert.Single(email.RcptTo);
            Assert.Equal("alerts@postback.test", email.MailFrom);
            Assert.Equal(email.RcptTo[0], Assert.Single(email.Message.To.Mailboxes).Address);
            Assert.Equal($"Order {orderId} could not be confirmed (company {CompanyId})", email.Subject);
            Assert.Contains($"could not confirm order {orderId} of company {CompanyId} ({OrganizationName})", email.Text);
            Assert.Contains("Message from the external system: Customer 6908 does not exist in the ERP", email.Text);
            Assert.Contains($"POST /api/v1/orders/{orderId}/reconfirm", email.Text);
        }
        // Status 0 is a business error: final, not retried (a confirmation due after it is sent).
        Time.Advance(TimeSpan.FromMinutes(10));
        await ProbeConfirmationsAsync(api, receiver);
        Assert.Single(Requests(receiver));

        // The other side is fixed; the operator reconfirms.
        receiver.Respond = _ => (200, """{"status":1,"message":"Created customer and order"}""");
        var reconfirmed = await Json.ReadOkAsync(await api.PostAsync($"/api/v1/orders/{orderId}/reconfirm", null), System.Net.HttpStatusCode.Accepted);
        Assert.Equal("pending", reconfirmed["status"]!.GetValue<string>());
        Assert.Equal(2, reconfirmed["round"]!.GetValue<int>());
        detail = await SettledAsync(api, orderId, "confirmed", attempts: 2);
        Assert.Equal("Created customer and order", detail["confirmation"]!["message"]!.GetValue<string>());
        Assert.Null(detail["confirmation"]!["error"]);
        Assert.Equal(2, Requests(receiver).Count);
        Assert.Equal(Requests(receiver)[0].BodyText, Requests(receiver)[1].BodyText);

        var alerts = detail["alerts"]!.AsArray();
        Assert.Equal(2, alerts.Count);
        Assert.All(alerts, a => Assert.Equal("sent", a!["status"]!.GetValue<string>()));

        var history = (await Json.ReadOkAsync(await api.GetAsync("/api/v1/customers/CUST-B/history"))).AsArray();
        Assert.Equal(["confirmed", "failed"], history.Select(h => h!["status"]!.GetValue<string>()));
        Assert.Equal(2, smtp.Received.Count);
    }

    [Theory]
    [InlineData(StorageKind.Sqlite)]
    [InlineData(StorageKind.Postgres)]
    public async Task Long_or_odd_answers_and_a_long_address_are_recorded_once_and_never_sent_again(StorageKind storage)
    {
        // A message longer than its column; a lone surrogate escape;
        // a non-JSON answer cut inside an emoji; an alert address whose outbox key would be
        // longer than its column. Each must end in a recorded outcome, not in a write that
        // fails and a confirmation sent again every time its lease runs out.
        var longMessage = new string('a', 1500);
        var longAddress = new string('a', 64) + "@" + new string('b', 60) + "." + new string('c', 60) + ".example.com";
        var receiver = await Own(await Receiver.StartAsync());
        var smtp = await Own(await SmtpSink.StartAsync());
        var (hub, api) = await HubAsync(receiver, smtp.Port, storage);
        await Json.ReadOkAsync(await api.PutJsonAsync("/api/v1/settings/order-confirmation-webhook", new
        {
            enabled = true,
            url = receiver.Url("/confirm"),
            authenticationToken = Token,
            notificationEmails = new[] { longAddress },
        }));
        var (longOrder, escapedOrder, textOrder, refusedOrder) = (await OrderAsync(api), await OrderAsync(api), await OrderAsync(api), await OrderAsync(api));
        receiver.Respond = r =>
            r.BodyText.Contains($":{longOrder}}}", StringComparison.Ordinal) ? (200, $$"""{"status":"1","message":"{{longMessage}}"}""")
            : r.BodyText.Contains($":{escapedOrder}}}", StringComparison.Ordinal) ? (200, """{"status":"1","message":"odd \ud800 text"}""")
            : r.BodyText.Contains($":{textOrder}}}", StringComparison.Ordinal) ? (200, new string('x', 199) + "\U0001F600 and more")
            : (200, """{"status":"0","message":"Customer unknown"}""");
        foreach (var orderId in new[] { longOrder, escapedOrder, textOrder, refusedOrder })
        {
            await Json.ReadOkAsync(await api.PostAsync($"/api/v1/orders/{orderId}/confirm", null), System.Net.HttpStatusCode.Accepted);
        }

        var confirmed = (await SettledAsync(api, longOrder, "confirmed"))["confirmation"]!;
        Assert.Equal(new string('a', 999) + "…", confirmed["message"]!.GetValue<string>());
        var escaped = (await SettledAsync(api, escapedOrder, "confirmed"))["confirmation"]!;
        Assert.Contains("ud800", escaped["message"]!.GetValue<string>(), StringComparison.Ordinal);
        var unreadable = (await SettledAsync(api, textOrder, "failed"))["confirmation"]!;
        Assert.Equal($"the receiver's answer could not be read: it is not JSON; it began: {new string('x', 199)}…", unreadable["error"]!.GetValue<string>());
        await SettledAsync(api, refusedOrder, "failed");

        // Two failures, two alerts, both to the long address, each once.
        var mail = await MailAsync(smtp, 2);
        Assert.All(mail, m => Assert.Equal([longAddress], m.RcptTo));
        Assert.Single(mail, m => m.Subject.Contains($"Order {textOrder} ", StringComparison.Ordinal));
        Assert.Single(mail, m => m.Subject.Contains($"Order {refusedOrder} ", StringComparison.Ordinal));
        var alert = Assert.Single((await ConfirmationAsync(api, refusedOrder))["alerts"]!.AsArray())!;
        Assert.Equal(longAddress, alert["recipient"]!.GetValue<string>());

        // Every outcome is recorded: no lease left to run out, nothing sent a second time (while
        // a confirmation and an e-mail queued after them go out).
        Time.Advance(TimeSpan.FromMinutes(5));
        await ProbeConfirmationsAsync(api, receiver);
        await ProbeEmailsAsync(hub, smtp);
        Assert.Equal(4, Requests(receiver).Count);
        Assert.Equal(2, Sent(smtp).Count);
    }

    [Fact]
    public async Task A_500_is_retried_on_the_clock_four_times_then_fails_and_alerts()
    {
        var receiver = await Own(await Receiver.StartAsync());
        receiver.Respond = _ => (500, "Internal Server Error");
        var smtp = await Own(await SmtpSink.StartAsync());
        var (_, api) = await HubAsync(receiver, smtp.Port);
        var orderId = await OrderAsync(api);

        await api.PostAsync($"/api/v1/orders/{orderId}/confirm", null);
        for (var attempt = 1; attempt < 4; attempt++)
        {
            var pending = await SettledAsync(api, orderId, "pending", attempts: attempt);
            Assert.Equal("the receiver answered HTTP 500", pending["confirmation"]!["error"]!.GetValue<string>());
            var next = pending["confirmation"]!["nextAttemptAt"]!.GetValue<DateTimeOffset>();
            // 2 s, 4 s, 8 s (±20%) on the hub's clock.
            var delay = next - Time.GetUtcNow();
            var expected = TimeSpan.FromSeconds(2 * Math.Pow(2, attempt - 1));
            Assert.InRange(delay, expected * 0.79, expected * 1.21);
            Assert.Equal(attempt, receiver.Received.Count);
            Time.Advance(delay);
        }
        var detail = await SettledAsync(api, orderId, "failed", attempts: 4);
        Assert.Equal(4, receiver.Received.Count);
        Assert.Equal("the receiver answered HTTP 500; gave up after 4 attempts", detail["confirmation"]!["error"]!.GetValue<string>());
        Assert.Equal(500, detail["confirmation"]!["lastStatusCode"]!.GetValue<int>());

        var mail = await MailAsync(smtp, 2);
        Assert.All(mail, m => Assert.Contains("Error: the receiver answered HTTP 500; gave up after 4 attempts", m.Text));
    }

    [Fact]
    public async Task A_receiver_that_hangs_times_out_is_retried_and_fails()
    {
        var receiver = await Own(await Receiver.StartAsync());
        receiver.Delay = TimeSpan.FromSeconds(30);
        var smtp = await Own(await SmtpSink.StartAsync());
        var (_, api) = await HubAsync(receiver, smtp.Port);
        var orderId = await OrderAsync(api);

        await api.PostAsync($"/api/v1/orders/{orderId}/confirm", null);
        for (var attempt = 1; attempt < 4; attempt++)
        {
            var pending = await SettledAsync(api, orderId, "pending", attempts: attempt);
            Assert.Equal("timed out after 1 s", pending["confirmation"]!["error"]!.GetValue<string>());
            Time.Advance(TimeSpan.FromSeconds(20));
        }
        var detail = await SettledAsync(api, orderId, "failed", attempts: 4);
        Assert.Equal("timed out after 1 s; gave up after 4 attempts", detail["confirmation"]!["error"]!.GetValue<string>());
        Assert.Null(detail["confirmation"]!["lastStatusCode"]);
        Assert.All(detail["attempts"]!.AsArray(), a => Assert.Null(a!["response"]));
        var mail = await MailAsync(smtp, 2);
        Assert.All(mail, m => Assert.Contains("timed out after 1 s", m.Text));
    }

    [Fact]
    public async Task A_garbage_answer_fails_once_and_says_it_could_not_be_read()
    {
        var receiver = await Own(await Receiver.StartAsync());
        receiver.Respond = _ => (200, "<html><body>Welcome to nginx!</body></html>");
        var smtp = await Own(await SmtpSink.StartAsync());
        var (_, api) = await HubAsync(receiver, smtp.Port);
        var orderId = await OrderAsync(api);

        await api.PostAsync($"/api/v1/orders/{orderId}/confirm", null);
        var detail = await SettledAsync(api, orderId, "failed");
        Assert.Equal(
            "the receiver's answer could not be read: it is not JSON; it began: <html><body>Welcome to nginx!</body></html>",
            detail["confirmation"]!["error"]!.GetValue<string>());
        Assert.Null(detail["confirmation"]!["message"]);
        var mail = await MailAsync(smtp, 2);
        Assert.All(mail, m => Assert.Contains("could not be read: it is not JSON", m.Text));
        Assert.Single(receiver.Received);
    }

    [Fact]
    public async Task An_alert_waits_out_an_smtp_server_that_is_down_and_arrives_exactly_once()
    {
        var receiver = await Own(await Receiver.StartAsync());
        receiver.Respond = _ => (200, """{"status":"0","message":"Price list missing"}""");
        var smtpPort = SmtpSink.FreePort();
        var (hub, api) = await HubAsync(receiver, smtpPort);
        var orderId = await OrderAsync(api);

        await api.PostAsync($"/api/v1/orders/{orderId}/confirm", null);
        await SettledAsync(api, orderId, "failed");

        // Nothing listens on the SMTP port: each alert was tried, and waits for its next turn.
        JsonNode? detail = null;
        await DeliveryScenario.WaitUntilAsync(
            async () => (detail = await ConfirmationAsync(api, orderId))["alerts"]!.AsArray() is { Count: 2 } alerts
                && alerts.All(a => a!["attempts"]!.GetValue<int>() >= 1),
            TimeSpan.FromSeconds(30), () => detail?.ToJsonString() ?? "");
        Assert.All(detail!["alerts"]!.AsArray(), a =>
        {
            Assert.Equal("pending", a!["status"]!.GetValue<string>());
            Assert.Contains("could not send through the SMTP server", a["lastError"]!.GetValue<string>());
        });

        // The server comes up. The retry is due on the hub's clock, not before.
        var smtp = await Own(await SmtpSink.StartAsync(smtpPort));
        await ProbeEmailsAsync(hub, smtp);
        Assert.Empty(Sent(smtp));
        Time.Advance(TimeSpan.FromSeconds(10));
        var mail = await MailAsync(smtp, 2);
        Assert.Equal(Alerted.Order(), mail.SelectMany(m => m.RcptTo).Order());
        Assert.All(mail, m => Assert.Contains("Price list missing", m.Text));

        // And never again.
        for (var i = 0; i < 3; i++)
        {
            Time.Advance(TimeSpan.FromMinutes(30));
            await ProbeEmailsAsync(hub, smtp);
        }
        Assert.Equal(2, Sent(smtp).Count);
        detail = await ConfirmationAsync(api, orderId);
        Assert.All(detail["alerts"]!.AsArray(), a =>
        {
            Assert.Equal("sent", a!["status"]!.GetValue<string>());
            Assert.Equal(2, a["attempts"]!.GetValue<int>());
        });
    }

    [Fact]
    public async Task An_smtp_login_the_server_cannot_do_keeps_the_alert_pending_without_showing_the_password()
    {
        const string password = "smtp-secret-6316";
        var receiver = await Own(await Receiver.StartAsync());
        receiver.Respond = _ => (200, """{"status":"0","message":"nope"}""");
        var smtp = await Own(await SmtpSink.StartAsync());
        var (_, api) = await HubAsync(receiver, smtp.Port, settings: new Dictionary<string, string?>
        {
            ["Postback:Smtp:Username"] = "alerts",
            ["Postback:Smtp:Password"] = password,
        });
        var orderId = await OrderAsync(api);
        await api.PostAsync($"/api/v1/orders/{orderId}/confirm", null);
        await SettledAsync(api, orderId, "failed");

        // Python's smtpd offers no AUTH: the login cannot happen, so nothing is sent, and the
        // alerts wait in the outbox with the reason.
        JsonNode? detail = null;
        await DeliveryScenario.WaitUntilAsync(
            async () => (detail = await ConfirmationAsync(api, orderId))["alerts"]!.AsArray() is { Count: 2 } alerts
                && alerts.All(a => a!["attempts"]!.GetValue<int>() >= 1),
            TimeSpan.FromSeconds(30), () => detail?.ToJsonString() ?? "");
        Assert.All(detail!["alerts"]!.AsArray(), a => Assert.Equal("pending", a!["status"]!.GetValue<string>()));
        Assert.Contains("authentication", detail.ToJsonString(), StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(password, detail.ToJsonString());
        Assert.Empty(smtp.Received);
    }

    [Fact]
    public async Task A_confirm_request_survives_a_restart()
    {
        var receiver = await Own(await Receiver.StartAsync());
        receiver.Respond = _ => (200, """{"status":"1","message":"ok after restart"}""");
        var smtp = await Own(await SmtpSink.StartAsync());
        var connectionString = ConfirmationHub.SqliteConnectionString(_directory);

        // A hub that takes the request but never sends (as one that crashes right after would).
        long orderId;
        await using (var first = ConfirmationHub.Start(Time, connectionString, StorageKind.Sqlite, smtp.Port,
            new Dictionary<string, string?> { ["Postback:Confirmation:Enabled"] = "false" }))
        {
            using var api = first.Api();
            var put = await api.PutJsonAsync("/api/v1/settings/order-confirmation-webhook", new
            {
                enabled = true, url = receiver.Url("/confirm"), authenticationToken = (string?)null, notificationEmails = Array.Empty<string>(),
            });
            await Json.ReadOkAsync(put);
            orderId = await OrderAsync(api);
            await Json.ReadOkAsync(await api.PostAsync($"/api/v1/orders/{orderId}/confirm", null), System.Net.HttpStatusCode.Accepted);
            // Its worker is off (Enabled false): nothing here can send the request.
            Assert.Empty(receiver.Received);
        }

        var second = await Own(ConfirmationHub.Start(Time, connectionString, StorageKind.Sqlite, smtp.Port));
        using var again = second.Api();
        var detail = await SettledAsync(again, orderId, "confirmed");
        Assert.Equal("ok after restart", detail["confirmation"]!["message"]!.GetValue<string>());
        var arrived = Assert.Single(receiver.Received);
        Assert.Null(arrived.Header("authenticationToken"));
    }

    [Fact]
    public async Task Reconfirm_waits_for_a_confirmation_in_flight()
    {
        var receiver = await Own(await Receiver.StartAsync());
        receiver.Delay = TimeSpan.FromSeconds(30);
        var smtp = await Own(await SmtpSink.StartAsync());
        var (_, api) = await HubAsync(receiver, smtp.Port, settings: new Dictionary<string, string?> { ["Postback:Outbound:TimeoutSeconds"] = "4" });
        var orderId = await OrderAsync(api);
        await api.PostAsync($"/api/v1/orders/{orderId}/confirm", null);
        await DeliveryScenario.WaitUntilAsync(() => receiver.Received.Count == 1, TimeSpan.FromSeconds(30), () => "the confirmation never arrived");

        var reason = await Json.AssertProblemAsync(await api.PostAsync($"/api/v1/orders/{orderId}/reconfirm", null), 409, "orderId");
        Assert.Contains("being sent right now", reason);

        // Once its answer (a timeout) is recorded, reconfirming starts a new round at once.
        receiver.Delay = TimeSpan.Zero;
        receiver.Respond = _ => (200, """{"status":"1","message":"ok"}""");
        await SettledAsync(api, orderId, "pending", attempts: 1);
        var again = await Json.ReadOkAsync(await api.PostAsync($"/api/v1/orders/{orderId}/reconfirm", null), System.Net.HttpStatusCode.Accepted);
        Assert.Equal(2, again["round"]!.GetValue<int>());
        var detail = await SettledAsync(api, orderId, "confirmed", attempts: 2);
        Assert.Equal([1, 2], detail["attempts"]!.AsArray().Select(a => a!["round"]!.GetValue<int>()));
    }

    [Fact]
    public async Task Two_hub_processes_on_one_postgres_database_send_each_confirmation_once()
    {
        var receiver = await Own(await Receiver.StartAsync());
        receiver.Respond = _ => (200, """{"status":"1","message":"ok"}""");
        var smtp = await Own(await SmtpSink.StartAsync());
        var connectionString = await PostgresServer.CreateDatabaseAsync("pb_confirm2");
        var (_, api) = await HubAsync(receiver, smtp.Port, StorageKind.Postgres, connectionString: connectionString);
        var other = await Own(ConfirmationHub.Start(Time, connectionString, StorageKind.Postgres, smtp.Port));
        using var otherApi = other.Api();

        var orders = new List<long>();
        for (var i = 0; i < 30; i++)
        {
            var orderId = await OrderAsync(api);
            orders.Add(orderId);
            // Both hubs take confirm requests and both workers send.
            var client = i % 2 == 0 ? api : otherApi;
            await Json.ReadOkAsync(await client.PostAsync($"/api/v1/orders/{orderId}/confirm", null), System.Net.HttpStatusCode.Accepted);
        }
        foreach (var orderId in orders)
        {
            await SettledAsync(api, orderId, "confirmed");
        }
        var sent = receiver.Received.Select(r => System.Text.Json.JsonDocument.Parse(r.BodyText).RootElement.GetProperty("orderId").GetInt64()).ToList();
        Assert.Equal(orders.Order(), sent.Order());
    }

    [Fact]
    public async Task Confirm_needs_a_known_order_and_an_enabled_webhook()
    {
        var receiver = await Own(await Receiver.StartAsync());
        var smtp = await Own(await SmtpSink.StartAsync());
        var (_, api) = await HubAsync(receiver, smtp.Port);
        await Json.AssertNotFoundAsync(await api.PostAsync("/api/v1/orders/999999/confirm", null));
        await Json.AssertNotFoundAsync(await api.GetAsync("/api/v1/orders/999999/confirmation"));

        var orderId = await OrderAsync(api);
        var off = await api.PutJsonAsync("/api/v1/settings/order-confirmation-webhook", new
        {
            enabled = false, url = receiver.Url("/confirm"), authenticationToken = Token, notificationEmails = Alerted,
        });
        await Json.ReadOkAsync(off);
        var reason = await Json.AssertProblemAsync(await api.PostAsync($"/api/v1/orders/{orderId}/confirm", null), 409, "enabled");
        Assert.Contains("not enabled", reason);
        await Json.AssertProblemAsync(await api.PostAsync($"/api/v1/orders/{orderId}/reconfirm", null), 409, "enabled");
        await Json.AssertNotFoundAsync(await api.GetAsync($"/api/v1/orders/{orderId}/confirmation"));
        var order = await Json.ReadOkAsync(await api.GetAsync($"/api/v1/orders/{orderId}"));
        Assert.Null(order["confirmation"]);
        Assert.Empty(receiver.Received);
    }
}
