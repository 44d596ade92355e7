using Microsoft.EntityFrameworkCore;
using Postback.Notifications;
using Postback.Organizations;
using Postback.Tests.Support;

namespace Postback.Tests.Confirmations;

/// Absence is checked after a later piece of work went through the same queue. Both queues
/// claim due rows oldest first, so once something queued now has been handled, anything due
/// earlier that the queue would have handled has been taken by then.
public sealed partial class ConfirmationWebhookTests
{
    private const string ProbeDomain = "@probe.peacock.example";
    private readonly HashSet<long> _probeOrders = [];

    /// Queues an alert e-mail due now and waits until the sink has it.
    private async Task ProbeEmailsAsync(ConfirmationHub hub, SmtpSink smtp)
    {
        var key = "probe-" + Guid.NewGuid().ToString("N");
        var recipient = key + ProbeDomain;
        var now = Time.GetUtcNow();
        await hub.WithDbAsync(async db =>
        {
            db.EmailOutbox.Add(Email((await db.Organizations.SingleAsync()).Id, key, recipient, now));
            return await db.SaveChangesAsync();
        });
        await DeliveryScenario.WaitUntilAsync(() => smtp.Received.Any(m => m.RcptTo.Contains(recipient)),
            TimeSpan.FromSeconds(30), () => $"the probe e-mail {key} was not sent", 25);
    }

    /// What the sink received apart from the probes.
    private static List<ReceivedEmail> Sent(SmtpSink smtp) =>
        smtp.Received.Where(m => !m.RcptTo.Any(r => r.EndsWith(ProbeDomain, StringComparison.Ordinal))).ToList();

    /// Confirms a new order now (the receiver accepts it, so it raises no alert) and waits
    /// until the receiver has it.
    private async Task ProbeConfirmationsAsync(HttpClient api, Receiver receiver)
    {
        var orderId = await OrderAsync(api);
        _probeOrders.Add(orderId);
        var answer = receiver.Respond;
        receiver.Respond = r => IsProbe(r) ? (200, """{"status":1,"message":"probe"}""") : answer(r);
        await Json.ReadOkAsync(await api.PostAsync($"/api/v1/orders/{orderId}/confirm", null), System.Net.HttpStatusCode.Accepted);
        await SettledAsync(api, orderId, "confirmed");
        receiver.Respond = answer;
    }

    private bool IsProbe(ReceivedRequest request) => _probeOrders.Any(id => request.BodyText.Contains($"\"orderId\":{id}}}", StringComparison.Ordinal));

    /// What the receiver received apart from the probes.
    private List<ReceivedRequest> Requests(Receiver receiver) => receiver.Received.Where(r => !IsProbe(r)).ToList();
}
