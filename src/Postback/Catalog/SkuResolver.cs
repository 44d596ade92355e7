using Microsoft.EntityFrameworkCore;
using Postback.Orders;
using Postback.Storage;

namespace Postback.Catalog;

/// Gives line items that carry only a SKU their product: first from the campaign's products,
/// then from SKUs an operator has linked. What stays unresolved is returned as unknown.
public static class SkuResolver
{
    public sealed record Resolution(OrderData Order, IReadOnlyList<OrderItem> Unknown);

    public static async Task<Resolution> ResolveAsync(PostbackDb db, long organizationId, string? campaignId, OrderData order, CancellationToken ct)
    {
        var open = order.Items.Where(i => i.ProductId is null && i.Sku is not null).ToList();
        if (open.Count == 0)
        {
            return new Resolution(order, []);
        }
        var campaignProducts = campaignId is null ? [] : await (
            from p in db.Products.AsNoTracking()
            join c in db.Campaigns.AsNoTracking() on p.CampaignKey equals c.Id
            where c.OrganizationId == organizationId && c.CampaignId == campaignId
            orderby p.Id
            select p).ToListAsync(ct);
        var bySku = new Dictionary<string, Product>(StringComparer.OrdinalIgnoreCase);
        foreach (var p in campaignProducts.Where(p => p.Sku is not null))
        {
            bySku.TryAdd(p.Sku!, p);
        }

        var rest = open.Select(i => i.Sku!).Where(s => !bySku.ContainsKey(s)).Distinct(StringComparer.Ordinal).ToList();
        if (rest.Count > 0)
        {
            var links = await db.ImportedSkus.AsNoTracking()
                .Where(s => s.OrganizationId == organizationId && s.ProductId != null && rest.Contains(s.Sku))
                .ToListAsync(ct);
            var productIds = links.Select(l => l.ProductId!).Distinct().ToList();
            var products = productIds.Count == 0 ? [] : await db.Products.AsNoTracking()
                .Where(p => p.OrganizationId == organizationId && productIds.Contains(p.ProductId))
                .OrderBy(p => p.Id)
                .ToListAsync(ct);
            foreach (var link in links)
            {
                if (products.FirstOrDefault(p => p.ProductId == link.ProductId) is { } product)
                {
                    bySku.TryAdd(link.Sku, product);
                }
            }
        }

        var unknown = new List<OrderItem>();
        var items = order.Items.Select(item =>
        {
            if (item.ProductId is not null || item.Sku is null)
            {
                return item;
            }
            if (bySku.TryGetValue(item.Sku, out var product))
            {
                return Link(item, product);
            }
            unknown.Add(item);
            return item;
        }).ToList();
        return new Resolution(new OrderData { OrderId = order.OrderId, Fields = order.Fields, Items = items }, unknown);
    }

    public static OrderItem Link(OrderItem item, Product product) =>
        item with { ProductId = product.ProductId, Name = item.Name ?? product.Name, Recurring = item.Recurring || product.Recurring };
}
