using Postback.ExportProfiles;
using Postback.Orders;
using Postback.Storage;

namespace Postback.Deliveries;

/// One delivery an event schedules: which profile fires, with which customer type, and when.
public sealed record Scheduled(ExportProfile Profile, string CustomerType, DateTimeOffset DueAt);

/// Scheduling as a pure function (PRODUCT.md sections 2 and 3): for an event of `eventType`
/// about `order`, each enabled profile whose routes match fires once, with the customer type its
/// routes chose, due its export delay after the event occurred. Profiles in the order given
/// (by id), so an event's deliveries are numbered the same way every time.
public static class Scheduling
{
    public static IReadOnlyList<Scheduled> For(
        IReadOnlyList<ExportProfile> profiles, string eventType, OrderData order, DateTimeOffset occurredAt, Func<string, bool>? isRecurringProduct = null)
    {
        if (profiles.Count == 0)
        {
            return [];
        }
        var facts = RoutingFacts.From(order, isRecurringProduct);
        var scheduled = new List<Scheduled>();
        foreach (var profile in profiles)
        {
            if (profile.Enabled && RouteMatcher.Match(profile.Routes, eventType, facts) is { } customerType)
            {
                scheduled.Add(new Scheduled(profile, customerType, occurredAt.AddMinutes(profile.ExportDelayMinutes)));
            }
        }
        return scheduled;
    }
}
