namespace Postback.Orders;

// The union of Konnektive's and CheckoutChamp's routing lists (seeds 001, 003), snake_case as in the API.
public static class CustomerTypes
{
    public const string Partial = "partial";
    public const string Lead = "lead";
    public const string AbandonedCart = "abandoned_cart";
    public const string NewSale = "new_sale";
    public const string SubscriptionStarted = "subscription_started";
    public const string Refund = "refund";
    public const string PartialRefund = "partial_refund";
    public const string FullRefund = "full_refund";

    public static readonly IReadOnlyList<(string Name, string Meaning)> All =
    [
        (Partial, "Incomplete orders (also called leads)."),
        (Lead, "Incomplete orders that have no product assigned. Matched by partial events."),
        (AbandonedCart, "Incomplete orders that have one or more products assigned. Matched by partial events."),
        (NewSale, "New sales that were successfully billed."),
        ("upsell", "Orders that include an upsell."),
        (SubscriptionStarted, "New sales that include a recurring product. Matched by new_sale events."),
        ("pre_billing", "After the pre-bill notification e-mail was sent ahead of the next rebill."),
        ("recurring_order", "Orders created as part of a continuity subscription."),
        ("decline", "Orders that declined."),
        ("rebill_decline", "A rebill (recurring purchase) declined."),
        ("recycle_failed", "Orders that reached recycle failed status."),
        ("cancel", "A recurring purchase was cancelled."),
        ("pause", "A recurring purchase was paused."),
        ("reactivate", "A recurring purchase was reactivated."),
        (Refund, "All refunds. Matched by partial_refund and full_refund events too."),
        (PartialRefund, "Orders that were partially refunded."),
        (FullRefund, "Orders that were fully refunded."),
        ("chargeback", "Orders that were charged back."),
        ("fulfillment_shipped", "The fulfillment status shows Shipped."),
        ("fulfillment_delivered", "The fulfillment status shows Delivered."),
        ("rma_issued", "An RMA was issued (fulfillment status RMA PENDING)."),
        ("rma_received", "An RMA was received (fulfillment status RETURNED)."),
        ("qa_pending", "Orders pending in QA."),
    ];

    private static readonly HashSet<string> Names = All.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);

    public static bool IsKnown(string? name) => name is not null && Names.Contains(name);

    public static string ListForErrors => string.Join(", ", All.Select(t => t.Name));

    /// The CRMs' own words for a type, as their routing screens show it ("New Sale", "RMA Issued").
    public static string Label(string name) => name switch
    {
        "pre_billing" => "Pre-Billing",
        "rma_issued" => "RMA Issued",
        "rma_received" => "RMA Received",
        "qa_pending" => "QA Pending",
        _ => string.Join(' ', name.Split('_').Select(w => w.Length == 0 ? w : char.ToUpperInvariant(w[0]) + w[1..])),
    };
}
