using System.Net;
using Microsoft.EntityFrameworkCore;
using Postback.Confirmations;
using Postback.Notifications;
using Postback.Organizations;
using Postback.Tests.Support;

namespace Postback.Tests.Confirmations;

/// Edge cases of order confirmation: the e-mail sender's lease over a slow
/// batch, its edge cases (a long refusal, an address MailKit cannot read), reconfirm's fresh
/// round, and confirm under database errors.
public sealed partial class ConfirmationWebhookTests
{
    private static OutboxEmail Email(long organizationId, string key, string recipient, DateTimeOffset dueAt) => new()
    {
        OrganizationId = organizationId,
        DedupKey = key,
        Recipient = recipient,
        Subject = $"Test alert {key}",
        Body = $"Body of {key}",
        DueAt = dueAt,
        CreatedAt = dueAt,
    };

    private static Task<List<OutboxEmail>> OutboxAsync(ConfirmationHub hub) =>
        hub.WithDbAsync(db => db.EmailOutbox.AsNoTracking().OrderBy(m => m.Id).ToListAsync());

    [Fact]
    public async Task A_batch_sent_slower_than_its_lease_leaves_the_messages_another_hub_took_to_that_hub()
    {
        var gate = Path.Combine(_directory, "release-smtp");
        Directory.CreateDirectory(_directory);
        var slow = await Own(await SmtpSink.StartAsync(holdUntilFileExists: gate));
        var fast = await Own(await SmtpSink.StartAsync());
        var receiver = await Own(await Receiver.StartAsync());
        var connectionString = await PostgresServer.CreateDatabaseAsync("pb_lease");
        var (first, _) = await HubAsync(receiver, slow.Port, StorageKind.Postgres,
            new Dictionary<string, string?> { ["Postback:Smtp:TimeoutSeconds"] = "120" }, connectionString);
        var now = Time.GetUtcNow();
        await first.WithDbAsync(async db =>
        {
            var organizationId = (await db.Organizations.SingleAsync()).Id;
            db.EmailOutbox.Add(Email(organizationId, "lease-1", "one@peacock.example", now - TimeSpan.FromSeconds(2)));
            db.EmailOutbox.Add(Email(organizationId, "lease-2", "two@peacock.example", now - TimeSpan.FromSeconds(1)));
            return await db.SaveChangesAsync();
        });

        // The first hub claims both and is stuck on the first one: the server does not answer.
        await slow.HeldAsync.WaitAsync(TimeSpan.FromSeconds(30));
        // Its lease runs out; a second hub on the same database claims and sends both.
        await Own(ConfirmationHub.Start(Time, connectionString, StorageKind.Postgres, fast.Port));
        Time.Advance(TimeSpan.FromMinutes(3));
        await DeliveryScenario.WaitUntilAsync(
            async () => (await OutboxAsync(first)).All(m => m.Status == EmailStatus.Sent) && fast.Received.Count == 2,
            TimeSpan.FromSeconds(30), () => $"the second hub sent {fast.Received.Count} of 2", 25);

        // The slow server answers at last. The message in flight went out twice (nothing can
        // unsend it), but the first hub must not send the second message again: it is no longer its.
        File.WriteAllText(gate, "go");
        await DeliveryScenario.WaitUntilAsync(() => slow.Received.Count >= 1, TimeSpan.FromSeconds(30), () => "the held message never completed", 25);
        // It ends its connection once it has gone through its batch: the second message would
        // have gone out on that connection before the QUIT.
        await DeliveryScenario.WaitUntilAsync(() => slow.Quits >= 1, TimeSpan.FromSeconds(30), () => "the first hub never finished its batch", 25);
        Assert.Equal(["one@peacock.example"], slow.Received.SelectMany(m => m.RcptTo));
        Assert.Equal(["one@peacock.example", "two@peacock.example"], fast.Received.SelectMany(m => m.RcptTo).Order());
        Assert.All(await OutboxAsync(first), m => Assert.Equal((EmailStatus.Sent, 1), (m.Status, m.Attempts)));
    }

    [Theory]
    [InlineData(StorageKind.Sqlite)]
    [InlineData(StorageKind.Postgres)]
    public async Task A_recipient_refused_with_a_very_long_reply_is_rejected_once_and_the_others_are_sent(StorageKind storage)
    {
        var receiver = await Own(await Receiver.StartAsync());
        receiver.Respond = _ => (200, """{"status":0,"message":"Customer unknown"}""");
        var smtp = await Own(await SmtpSink.StartAsync());
        var (hub, api) = await HubAsync(receiver, smtp.Port, storage);
        await Json.ReadOkAsync(await api.PutJsonAsync("/api/v1/settings/order-confirmation-webhook", new
        {
            enabled = true,
            url = receiver.Url("/confirm"),
            authenticationToken = Token,
            notificationEmails = new[] { "refused-sales@peacock.example", "ops@peacock.example" },
        }));
        var orderId = await OrderAsync(api);
        await Json.ReadOkAsync(await api.PostAsync($"/api/v1/orders/{orderId}/confirm", null), HttpStatusCode.Accepted);
        await SettledAsync(api, orderId, "failed");

        System.Text.Json.Nodes.JsonArray? alerts = null;
        await DeliveryScenario.WaitUntilAsync(
            async () =>
            {
                alerts = (await ConfirmationAsync(api, orderId))["alerts"]!.AsArray();
                return alerts.Count == 2 && alerts.All(a => a!["status"]!.GetValue<string>() != "pending");
            },
            TimeSpan.FromSeconds(30), () => $"alerts still pending: {alerts?.ToJsonString()}", 25);
        var refused = alerts!.Single(a => a!["recipient"]!.GetValue<string>() == "refused-sales@peacock.example")!;
        Assert.Equal("rejected", refused["status"]!.GetValue<string>());
        var error = refused["lastError"]!.GetValue<string>();
        Assert.StartsWith("the SMTP server refused the recipient: 550", error, StringComparison.Ordinal);
        Assert.True(error.Length <= 1000, $"{error.Length} characters");
        Assert.EndsWith("…", error, StringComparison.Ordinal);
        Assert.Equal("sent", alerts!.Single(a => a!["recipient"]!.GetValue<string>() == "ops@peacock.example")!["status"]!.GetValue<string>());

        // Rejected is final: nothing is tried again, though a message queued after it goes out.
        Time.Advance(TimeSpan.FromMinutes(30));
        await ProbeEmailsAsync(hub, smtp);
        Assert.Equal(["ops@peacock.example"], Sent(smtp).SelectMany(m => m.RcptTo));
        var after = (await ConfirmationAsync(api, orderId))["alerts"]!.AsArray();
        Assert.All(after, a => Assert.Equal(1, a!["attempts"]!.GetValue<int>()));
    }

    [Fact]
    public async Task An_address_mailkit_cannot_parse_is_rejected_alone_and_the_rest_of_its_batch_is_sent()
    {
        var receiver = await Own(await Receiver.StartAsync());
        var smtp = await Own(await SmtpSink.StartAsync());
        var (hub, _) = await HubAsync(receiver, smtp.Port);
        var now = Time.GetUtcNow();
        await hub.WithDbAsync(async db =>
        {
            var organizationId = (await db.Organizations.SingleAsync()).Id;
            db.EmailOutbox.Add(Email(organizationId, "bad", "broken@peacock.example@other.example", now - TimeSpan.FromSeconds(3)));
            db.EmailOutbox.Add(Email(organizationId, "good-1", "sales@peacock.example", now - TimeSpan.FromSeconds(2)));
            db.EmailOutbox.Add(Email(organizationId, "good-2", "ops@peacock.example", now - TimeSpan.FromSeconds(1)));
            return await db.SaveChangesAsync();
        });

        await DeliveryScenario.WaitUntilAsync(async () => (await OutboxAsync(hub)).All(m => m.Status != EmailStatus.Pending),
            TimeSpan.FromSeconds(30), () => "the outbox still has pending messages", 25);
        var outbox = await OutboxAsync(hub);
        var bad = outbox.Single(m => m.DedupKey == "bad");
        Assert.Equal(EmailStatus.Rejected, bad.Status);
        Assert.StartsWith("the recipient address cannot be used: ", bad.LastError, StringComparison.Ordinal);
        Assert.All(outbox.Where(m => m.DedupKey != "bad"), m => Assert.Equal((EmailStatus.Sent, 1), (m.Status, m.Attempts)));
        Assert.Equal(["ops@peacock.example", "sales@peacock.example"], smtp.Received.SelectMany(m => m.RcptTo).Order());

        Time.Advance(TimeSpan.FromMinutes(30));
        await ProbeEmailsAsync(hub, smtp);
        Assert.Equal(2, Sent(smtp).Count);
        Assert.Equal(1, (await OutboxAsync(hub)).Single(m => m.DedupKey == "bad").Attempts);
    }

    [Fact]
    public async Task Reconfirm_shows_a_fresh_pending_round_and_keeps_the_previous_outcome_in_its_attempts()
    {
        var receiver = await Own(await Receiver.StartAsync());
        receiver.Respond = _ => (200, """{"status":0,"message":"Customer unknown"}""");
        var smtp = await Own(await SmtpSink.StartAsync());
        var (_, api) = await HubAsync(receiver, smtp.Port);
        var orderId = await OrderAsync(api);
        await Json.ReadOkAsync(await api.PostAsync($"/api/v1/orders/{orderId}/confirm", null), HttpStatusCode.Accepted);
        await SettledAsync(api, orderId, "failed");

        Time.Advance(TimeSpan.FromMinutes(5));
        receiver.Respond = _ => (200, """{"status":1,"message":"Created"}""");
        var reconfirmed = await Json.ReadOkAsync(await api.PostAsync($"/api/v1/orders/{orderId}/reconfirm", null), HttpStatusCode.Accepted);
        Assert.Equal("pending", reconfirmed["status"]!.GetValue<string>());
        Assert.Equal(2, reconfirmed["round"]!.GetValue<int>());
        Assert.Equal(0, reconfirmed["attempts"]!.GetValue<int>());
        Assert.Null(reconfirmed["message"]);
        Assert.Null(reconfirmed["error"]);
        Assert.Null(reconfirmed["lastStatusCode"]);
        Assert.Equal(reconfirmed["requestedAt"]!.GetValue<DateTimeOffset>(), reconfirmed["statusAt"]!.GetValue<DateTimeOffset>());
        Assert.Equal(Time.GetUtcNow(), reconfirmed["statusAt"]!.GetValue<DateTimeOffset>());

        var detail = await SettledAsync(api, orderId, "confirmed", attempts: 2);
        var first = detail["attempts"]!.AsArray().Single(a => a!["round"]!.GetValue<int>() == 1)!;
        Assert.Equal("the receiver answered status 0", first["error"]!.GetValue<string>());
        Assert.Contains("Customer unknown", first["response"]!["bodyExcerpt"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Null(detail["confirmation"]!["error"]);
    }

    /// A trigger on PostgreSQL that makes the next <paramref name="count"/> confirmation inserts
    /// fail with this SQLSTATE (a sequence counts them: it is not rolled back with the insert).
    private static Task InjectInsertFailuresAsync(ConfirmationHub hub, int count, string sqlState)
    {
        // Test-owned constants only: nothing here comes from outside the test.
        var sql = $"""
        CREATE TABLE IF NOT EXISTS test_failures (remaining int NOT NULL, code text NOT NULL);
        CREATE SEQUENCE IF NOT EXISTS test_failure_count;
        DELETE FROM test_failures;
        INSERT INTO test_failures VALUES ({count}, '{sqlState}');
        ALTER SEQUENCE test_failure_count RESTART WITH 1;
        CREATE OR REPLACE FUNCTION test_fail() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE f record;
        BEGIN
            SELECT * INTO f FROM test_failures;
            IF nextval('test_failure_count') <= f.remaining THEN
                RAISE EXCEPTION 'injected failure %', f.code USING ERRCODE = f.code;
            END IF;
            RETURN NEW;
        END $$;
        DROP TRIGGER IF EXISTS test_fail ON order_confirmations;
        CREATE TRIGGER test_fail BEFORE INSERT ON order_confirmations FOR EACH ROW EXECUTE FUNCTION test_fail();
        """;
        return hub.WithDbAsync(db => db.Database.ExecuteSqlRawAsync(sql));
    }

    private static Task<int> ConfirmationRowsAsync(ConfirmationHub hub, long orderId) =>
        hub.WithDbAsync(db => db.Confirmations.CountAsync(c => c.OrderId == orderId));

    [Fact]
    public async Task Confirm_retries_a_transient_database_error_and_stores_nothing_on_one_that_persists_or_is_unexpected()
    {
        var receiver = await Own(await Receiver.StartAsync());
        receiver.Respond = _ => (200, """{"status":1,"message":"ok"}""");
        var smtp = await Own(await SmtpSink.StartAsync());
        var (hub, api) = await HubAsync(receiver, smtp.Port, StorageKind.Postgres);
        var (retried, refused) = (await OrderAsync(api), await OrderAsync(api));

        // Two serialization failures, then it goes through: the caller sees none of them.
        await InjectInsertFailuresAsync(hub, 2, "40001");
        var confirmed = await Json.ReadOkAsync(await api.PostAsync($"/api/v1/orders/{retried}/confirm", null), HttpStatusCode.Accepted);
        Assert.Equal("pending", confirmed["status"]!.GetValue<string>());
        Assert.Equal(1, await ConfirmationRowsAsync(hub, retried));
        await SettledAsync(api, retried, "confirmed");

        // A deadlock every time: retried a bounded number of times, then 503 and nothing stored.
        await InjectInsertFailuresAsync(hub, 1000, "40P01");
        var busy = await api.PostAsync($"/api/v1/orders/{refused}/confirm", null);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, busy.StatusCode);
        Assert.Equal("application/problem+json", busy.Content.Headers.ContentType?.MediaType);
        Assert.Contains("nothing was stored", (await Json.ReadAsync(busy))["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(0, await ConfirmationRowsAsync(hub, refused));
        var reconfirmBusy = await api.PostAsync($"/api/v1/orders/{refused}/reconfirm", null);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, reconfirmBusy.StatusCode);

        // An error that is nobody's fault but a bug: an error answer, and still nothing stored.
        await InjectInsertFailuresAsync(hub, 1000, "P0001");
        var broken = await api.PostAsync($"/api/v1/orders/{refused}/confirm", null);
        Assert.Equal(HttpStatusCode.InternalServerError, broken.StatusCode);
        Assert.Equal(0, await ConfirmationRowsAsync(hub, refused));
        await Json.AssertNotFoundAsync(await api.GetAsync($"/api/v1/orders/{refused}/confirmation"));

        // The database is well again: the same request confirms the order, once.
        await InjectInsertFailuresAsync(hub, 0, "40001");
        await Json.ReadOkAsync(await api.PostAsync($"/api/v1/orders/{refused}/confirm", null), HttpStatusCode.Accepted);
        await SettledAsync(api, refused, "confirmed");
        Assert.Equal(1, await ConfirmationRowsAsync(hub, refused));
        Assert.Equal(2, receiver.Received.Count);
    }
}
