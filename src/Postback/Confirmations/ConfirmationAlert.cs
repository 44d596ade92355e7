using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Postback.Notifications;

namespace Postback.Confirmations;

/// The e-mail that tells the notification addresses a confirmation failed (seed 002,
/// "Notification sample"): which order, which company, what the receiver said or what went
/// wrong, and how to reconfirm once the other side is fixed.
public static class ConfirmationAlert
{
    public static string Subject(long orderId, long companyId) =>
        string.Create(CultureInfo.InvariantCulture, $"Order {orderId} could not be confirmed (company {companyId})");

    public static string Body(OrderConfirmation confirmation, string organizationName, long companyId, string? url)
    {
        var b = new StringBuilder();
        var i = CultureInfo.InvariantCulture;
        b.Append(i, $"The order confirmation webhook could not confirm order {confirmation.OrderId} of company {companyId} ({organizationName}).").Append('\n');
        b.Append('\n');
        if (confirmation.Message is { Length: > 0 } message)
        {
            b.Append("Message from the external system: ").Append(message).Append('\n');
        }
        if (confirmation.Error is { Length: > 0 } error)
        {
            b.Append("Error: ").Append(error).Append('\n');
        }
        b.Append('\n');
        b.Append(i, $"Order: {confirmation.OrderId}").Append('\n');
        b.Append(i, $"Company: {companyId} ({organizationName})").Append('\n');
        if (url is not null)
        {
            b.Append("Webhook URL: ").Append(url).Append('\n');
        }
        b.Append(i, $"Attempts: {confirmation.Attempts}, the last at {confirmation.LastAttemptAt:yyyy-MM-dd HH:mm:ss} UTC").Append('\n');
        b.Append('\n');
        b.Append("Once the issue is solved in the external system, reconfirm the order:").Append('\n');
        b.Append(i, $"  POST /api/v1/orders/{confirmation.OrderId}/reconfirm").Append('\n');
        b.Append("Every request sent and every answer received are shown by").Append('\n');
        b.Append(i, $"  GET /api/v1/orders/{confirmation.OrderId}/confirmation").Append('\n');
        return b.ToString();
    }

    /// One outbox row per address. The key names the failure (confirmation and round) and the
    /// recipient, so recording the same failure twice cannot queue a second e-mail.
    public static IEnumerable<OutboxEmail> Emails(
        OrderConfirmation confirmation, IEnumerable<string> recipients, string organizationName, long companyId, string? url, DateTimeOffset now)
    {
        var subject = Subject(confirmation.OrderId, companyId);
        var body = Body(confirmation, organizationName, companyId, url);
        return recipients
            .Select(r => r.Trim())
            .Distinct(StringComparer.OrdinalIgnoreCase)
            .Select(r => new OutboxEmail
            {
                OrganizationId = confirmation.OrganizationId,
                DedupKey = DedupKey(confirmation.Id, confirmation.Round, r),
                Recipient = r,
                Subject = subject,
                Body = body,
                DueAt = now,
                CreatedAt = now,
            });
    }

    public static string KeyPrefix(long confirmationId) => string.Create(CultureInfo.InvariantCulture, $"confirmation:{confirmationId}:");

    /// The outbox's DedupKey column holds 200 characters and an address may have 254: a key that
    /// would not fit names the recipient by its SHA-256 instead (still one key per address).
    public static string DedupKey(long confirmationId, int round, string recipient)
    {
        var address = recipient.ToLowerInvariant();
        var key = string.Create(CultureInfo.InvariantCulture, $"{KeyPrefix(confirmationId)}{round}:{address}");
        return key.Length <= MaxDedupKeyLength
            ? key
            : string.Create(CultureInfo.InvariantCulture,
                $"{KeyPrefix(confirmationId)}{round}:sha256:{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(address)))}");
    }

    public const int MaxDedupKeyLength = 200;
}
