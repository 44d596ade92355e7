using System.Text;
using Postback.Orders;

namespace Postback.Plugins;

/// The CRMs spell customer types their own way (NEW_SALE, "New Sale", Sale, Partial, ...).
/// Spellings are compared with case, spaces, hyphens and underscores ignored, so "New Sale",
/// "new-sale" and "NEW_SALE" are one name; then the aliases below map CRM words to ours.
public static class CrmCustomerTypes
{
    private static readonly Dictionary<string, string> Aliases = BuildAliases();

    private static Dictionary<string, string> BuildAliases()
    {
        var aliases = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, _) in CustomerTypes.All)
        {
            aliases[Key(name)] = name;
        }
        void Alias(string type, params string[] spellings)
        {
            foreach (var s in spellings)
            {
                aliases[Key(s)] = type;
            }
        }
        Alias(CustomerTypes.NewSale, "sale", "new order", "neworder", "initial sale", "new");
        Alias(CustomerTypes.Partial, "partial order", "partials", "prospect");
        Alias(CustomerTypes.AbandonedCart, "abandoned", "abandon cart", "cart abandon");
        Alias("upsell", "upsale", "up sell", "upsell order");
        Alias("recurring_order", "recurring", "rebill", "rebill order", "recurring sale", "continuity");
        Alias("decline", "declined", "declined order", "decline order", "hard decline", "soft decline");
        Alias("rebill_decline", "rebill declined", "recurring decline");
        Alias("recycle_failed", "recycle fail");
        Alias("cancel", "cancelled", "canceled", "cancellation", "cancel subscription");
        Alias("pause", "paused");
        Alias("reactivate", "reactivated", "resume", "resumed");
        Alias(CustomerTypes.Refund, "refunded", "all refunds");
        Alias(CustomerTypes.PartialRefund, "partially refunded", "partial refunded");
        Alias(CustomerTypes.FullRefund, "fully refunded", "full refunded", "void", "voided");
        Alias("chargeback", "charge back", "charged back");
        Alias("fulfillment_shipped", "shipped", "fulfillment shipped");
        Alias("fulfillment_delivered", "delivered");
        Alias("rma_issued", "rma pending", "rma");
        Alias("rma_received", "returned");
        Alias("pre_billing", "prebill", "pre bill", "prebilling");
        Alias(CustomerTypes.SubscriptionStarted, "subscription start", "subscription");
        return aliases;
    }

    // Letters and digits only, lower case: "New Sale" → "newsale".
    private static string Key(string spelling)
    {
        var key = new StringBuilder(spelling.Length);
        foreach (var c in spelling)
        {
            if (char.IsAsciiLetterOrDigit(c))
            {
                key.Append(char.ToLowerInvariant(c));
            }
        }
        return key.ToString();
    }

    public static string? Resolve(string? spelling) =>
        string.IsNullOrWhiteSpace(spelling) ? null : Aliases.GetValueOrDefault(Key(spelling));

    /// When a postback carries no customer type, its order status says what happened (the
    /// statuses both CRMs report on orders).
    public static string? FromOrderStatus(string? status) => status is null ? null : Key(status) switch
    {
        "partial" => CustomerTypes.Partial,
        "complete" or "completed" or "approved" => CustomerTypes.NewSale,
        "declined" or "decline" => "decline",
        "refunded" => CustomerTypes.FullRefund,
        "partiallyrefunded" => CustomerTypes.PartialRefund,
        "cancelled" or "canceled" => "cancel",
        "chargeback" => "chargeback",
        _ => null,
    };
}
