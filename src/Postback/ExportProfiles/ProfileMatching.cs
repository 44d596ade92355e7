using Microsoft.EntityFrameworkCore;
using Postback.Orders;
using Postback.Storage;

namespace Postback.ExportProfiles;

public sealed record ProfileMatch(long ProfileId, string ProfileName, string CustomerType, DateTimeOffset DueAt);

/// Which enabled export profiles an event fires, with the customer type each fires with.
public sealed class ProfileMatching(PostbackDb db)
{
    public async Task<IReadOnlyList<IReadOnlyList<ProfileMatch>>> MatchAsync(
        long organizationId, IReadOnlyList<(OrderEvent Event, OrderData Order)> events, CancellationToken ct)
    {
        var profiles = await db.ExportProfiles.AsNoTracking()
            .Where(p => p.OrganizationId == organizationId && p.Enabled)
            .OrderBy(p => p.Id)
            .ToListAsync(ct);
        if (profiles.Count == 0)
        {
            return events.Select(_ => (IReadOnlyList<ProfileMatch>)[]).ToList();
        }

        var productIds = events.SelectMany(e => e.Order.Items).Where(i => i.ProductId is not null).Select(i => i.ProductId!).Distinct().ToList();
        var recurring = productIds.Count == 0
            ? []
            : (await db.Products.AsNoTracking()
                .Where(p => p.OrganizationId == organizationId && p.Recurring && productIds.Contains(p.ProductId))
                .Select(p => p.ProductId)
                .ToListAsync(ct)).ToHashSet(StringComparer.Ordinal);

        return events.Select(e =>
        {
            var facts = RoutingFacts.From(e.Order, recurring.Contains);
            var matches = new List<ProfileMatch>();
            foreach (var profile in profiles)
            {
                if (RouteMatcher.Match(profile.Routes, e.Event.Type, facts) is { } customerType)
                {
                    matches.Add(new ProfileMatch(profile.Id, profile.Name, customerType, e.Event.OccurredAt.AddMinutes(profile.ExportDelayMinutes)));
                }
            }
            return (IReadOnlyList<ProfileMatch>)matches;
        }).ToList();
    }
}
