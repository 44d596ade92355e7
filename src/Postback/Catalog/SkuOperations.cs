using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Postback.Infrastructure;
using Postback.Orders;
using Postback.Storage;

namespace Postback.Catalog;

/// What the SKUs API and the admin pages both do with imported SKUs: list them, and link one
/// to a product, which resolves the stored order lines that carry it.
public static class SkuOperations
{
    public const int DefaultPage = 200;
    public const int MaxPage = 1000;
    // Orders rewritten per transaction when a link resolves stored lines.
    public const int ResolveBatch = 500;
    // Tries per batch when postbacks keep changing its orders at the same time.
    public const int MaxBatchAttempts = 10;

    /// One page of the organization's SKUs in id order, after afterId.
    public static async Task<List<ImportedSku>> ListAsync(
        PostbackDb db, long organizationId, bool? linked, CancellationToken ct, int limit = MaxPage, long? afterId = null)
    {
        var query = db.ImportedSkus.AsNoTracking().Where(s => s.OrganizationId == organizationId);
        if (linked is { } wanted)
        {
            query = wanted ? query.Where(s => s.ProductId != null) : query.Where(s => s.ProductId == null);
        }
        if (afterId is { } after)
        {
            query = query.Where(s => s.Id > after);
        }
        return await query.OrderBy(s => s.Id).Take(limit).ToListAsync(ct);
    }

    /// Complete is false when stored lines remain unresolved (postbacks kept changing the same
    /// orders); the link stands, the SKU stays marked ResolvePending, and the next link call or
    /// the background pass (PluginMaintenance) finishes them.
    public sealed record LinkResult(ImportedSku? Sku, int ResolvedOrders, int ResolvedLines, bool Complete, ValidationErrors Errors);

    public static async Task<LinkResult> LinkAsync(
        PostbackDb db, ISkuStore skus, long organizationId, string sku, string? productId, CancellationToken ct)
    {
        var errors = new ValidationErrors();
        sku = sku.Trim();
        if (sku.Length is 0 or > 64 || sku.Any(char.IsControl))
        {
            errors.Add("sku", "must be 1 to 64 characters without control characters");
        }
        productId = productId?.Trim();
        Product? product = null;
        if (string.IsNullOrEmpty(productId))
        {
            errors.Add("productId", "is required");
        }
        else
        {
            product = await db.Products.AsNoTracking().Where(p => p.OrganizationId == organizationId && p.ProductId == productId).OrderBy(p => p.Id).FirstOrDefaultAsync(ct);
            if (product is null)
            {
                errors.Add("productId", $"there is no product '{Text.Clip(productId, 65, "…")}' in any campaign");
            }
        }
        if (errors.Any)
        {
            return new LinkResult(null, 0, 0, false, errors);
        }

        var (row, orders, lines, complete) = await skus.LinkAsync(organizationId, sku, product!, ct);
        return new LinkResult(row, orders, lines, complete, errors);
    }

    /// Links the order's lines that carry one of the SKUs and no product; returns how many.
    public static int Apply(StoredOrder row, IReadOnlyDictionary<string, Product> bySku, DateTimeOffset now)
    {
        var order = OrderJson.Deserialize(row.Data);
        var changed = 0;
        var items = order.Items.Select(i =>
        {
            if (i.ProductId is null && i.Sku is not null && bySku.TryGetValue(i.Sku, out var product))
            {
                changed++;
                return SkuResolver.Link(i, product);
            }
            return i;
        }).ToList();
        if (changed > 0)
        {
            row.Data = OrderJson.Serialize(new OrderData { OrderId = order.OrderId, Fields = order.Fields, Items = items });
            row.Version++;
            row.UpdatedAt = now;
        }
        return changed;
    }
}
