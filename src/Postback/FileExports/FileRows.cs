using Microsoft.EntityFrameworkCore;
using Postback.Catalog;
using Postback.ExportProfiles;
using Postback.Orders;
using Postback.Storage;

namespace Postback.FileExports;

/// The rows of one route's file for one day: the organization's events due that day (event time
/// + export delay, in the profile's zone) that fire the profile through that route, oldest
/// first, each rendered from its order as the order is now (as a postback renders it when sent).
public static class FileRows
{
    private const int Chunk = 500;

    public static async Task<List<FileRow>> ForDayAsync(PostbackDb db, ExportProfile profile, int routeIndex, DateOnly day, CancellationToken ct)
    {
        var zone = FileDays.FindTimeZone(profile.File!.Schedule.TimeZone) ?? TimeZoneInfo.Utc;
        var (start, end) = FileDays.Window(day, zone);
        var delay = TimeSpan.FromMinutes(profile.ExportDelayMinutes);
        var (from, to) = (start - delay, end - delay);
        var organizationId = profile.OrganizationId;
        var events = await db.OrderEvents.AsNoTracking()
            .Where(e => e.OrganizationId == organizationId && e.OccurredAt >= from && e.OccurredAt < to)
            .OrderBy(e => e.OccurredAt).ThenBy(e => e.Id)
            .Select(e => new { e.Type, e.OrderKey })
            .ToListAsync(ct);
        var rows = new List<FileRow>();
        if (events.Count == 0)
        {
            return rows;
        }
        var recurring = (await db.Products.AsNoTracking()
            .Where(p => p.OrganizationId == organizationId && p.Recurring)
            .Select(p => p.ProductId).ToListAsync(ct)).ToHashSet(StringComparer.Ordinal);
        var campaigns = await db.Campaigns.AsNoTracking()
            .Where(c => c.OrganizationId == organizationId)
            .Select(c => new { c.CampaignId, c.Name })
            .ToDictionaryAsync(c => c.CampaignId, c => c.Name, ct);
        var orders = new Dictionary<long, OrderData>();
        foreach (var keys in events.Select(e => e.OrderKey).Distinct().Chunk(Chunk))
        {
            var stored = await db.Orders.AsNoTracking().Where(o => keys.Contains(o.Id)).Select(o => new { o.Id, o.Data }).ToListAsync(ct);
            foreach (var o in stored)
            {
                orders[o.Id] = OrderJson.Deserialize(o.Data);
            }
        }
        foreach (var e in events)
        {
            if (!orders.TryGetValue(e.OrderKey, out var order))
            {
                continue;
            }
            var fired = RouteMatcher.MatchRoute(profile.Routes, e.Type, RoutingFacts.From(order, recurring.Contains));
            if (fired is { } f && f.Index == routeIndex)
            {
                var campaignName = order.CampaignId is { } id && campaigns.TryGetValue(id, out var name) ? name : null;
                rows.Add(new FileRow(order, new RenderContext(f.CustomerType, campaignName)));
            }
        }
        return rows;
    }
}
