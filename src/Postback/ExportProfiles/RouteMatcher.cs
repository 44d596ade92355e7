using Postback.Orders;

namespace Postback.ExportProfiles;

/// The facts about an order that routing looks at.
public sealed record RoutingFacts(string? CampaignId, IReadOnlyList<string> ProductIds, bool HasProducts, bool HasRecurringProduct, bool IsTestCard)
{
    public static RoutingFacts From(OrderData order, Func<string, bool>? isRecurringProduct = null) => new(
        order.CampaignId,
        order.Items.Where(i => i.ProductId is not null).Select(i => i.ProductId!).ToList(),
        order.Items.Count > 0,
        order.Items.Any(i => i.Recurring || (i.ProductId is not null && isRecurringProduct?.Invoke(i.ProductId) == true)),
        order.IsTestCard);
}

public static class RouteMatcher
{
    /// The customer types an event of this type answers to, most specific first: the event's
    /// own type, then the ones the CRMs derive from it (PRODUCT.md section 2).
    public static IReadOnlyList<string> CandidateTypes(string eventType, RoutingFacts order) => eventType switch
    {
        CustomerTypes.Partial => [CustomerTypes.Partial, order.HasProducts ? CustomerTypes.AbandonedCart : CustomerTypes.Lead],
        CustomerTypes.PartialRefund or CustomerTypes.FullRefund => [eventType, CustomerTypes.Refund],
        CustomerTypes.NewSale when order.HasRecurringProduct => [CustomerTypes.NewSale, CustomerTypes.SubscriptionStarted],
        _ => [eventType],
    };

    /// The customer type with which a profile fires for an event, or null if none of its routes
    /// match. A profile fires at most once per event: the first matching route decides.
    public static string? Match(IReadOnlyList<ExportRoute> routes, string eventType, RoutingFacts order) =>
        MatchRoute(routes, eventType, order)?.CustomerType;

    /// The first matching route (its index, which picks a file profile's file) and the customer
    /// type it fires with, or null.
    public static (int Index, string CustomerType)? MatchRoute(IReadOnlyList<ExportRoute> routes, string eventType, RoutingFacts order)
    {
        // Test card orders never export (seeds 001, 003).
        if (order.IsTestCard)
        {
            return null;
        }
        var candidates = CandidateTypes(eventType, order);
        for (var index = 0; index < routes.Count; index++)
        {
            var route = routes[index];
            var type = candidates.FirstOrDefault(c => route.CustomerTypes.Contains(c, StringComparer.Ordinal));
            if (type is null)
            {
                continue;
            }
            if (route.CampaignIds is { Count: > 0 } campaigns
                && (order.CampaignId is null || !campaigns.Contains(order.CampaignId, StringComparer.Ordinal)))
            {
                continue;
            }
            if (route.ProductIds is { Count: > 0 } products && !order.ProductIds.Any(p => products.Contains(p, StringComparer.Ordinal)))
            {
                continue;
            }
            return (index, type);
        }
        return null;
    }
}
