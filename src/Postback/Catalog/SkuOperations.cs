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
    public static async Task<List<ImportedSku>> ListAsync(PostbackDb db, long organizationId, bool? linked, CancellationToken ct)
    {
        var query = db.ImportedSkus.AsNoTracking().Where(s => s.OrganizationId == organizationId);
        if (linked is { } wanted)
        {
            query = wanted ? query.Where(s => s.ProductId != null) : query.Where(s => s.ProductId == null);
        }
        return await query.OrderBy(s => s.Id).ToListAsync(ct);
    }

    public sealed record LinkResult(ImportedSku? Sku, int ResolvedOrders, int ResolvedLines, ValidationErrors Errors);

    public static async Task<LinkResult> LinkAsync(
        PostbackDb db, WriteGate gate, TimeProvider time, long organizationId, string sku, string? productId, CancellationToken ct)
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
                errors.Add("productId", $"there is no product '{(productId.Length > 64 ? productId[..64] + "…" : productId)}' in any campaign");
            }
        }
        if (errors.Any)
        {
            return new LinkResult(null, 0, 0, errors);
        }

        var now = time.GetUtcNow();
        // A SKU that was kept as unknown (import off) can be linked too: the link is made here.
        var row = await db.ImportedSkus.FirstOrDefaultAsync(s => s.OrganizationId == organizationId && s.Sku == sku, ct);
        if (row is null)
        {
            row = new ImportedSku { OrganizationId = organizationId, Sku = sku, FirstSeenAt = now };
            db.ImportedSkus.Add(row);
        }
        row.ProductId = product!.ProductId;
        row.LinkedAt = now;
        using (await gate.EnterAsync(ct))
        {
            await db.SaveChangesAsync(ct);
        }
        var (orders, lines) = await ResolveOrderLinesAsync(db, gate, organizationId, sku, product, time, ct);
        return new LinkResult(row, orders, lines, errors);
    }

    /// Gives the stored order lines that carry the SKU and no product the linked product. Each
    /// order is written with its version checked, so a postback merging into it at the same time
    /// is not overwritten: the loser reads the order again.
    private static async Task<(int Orders, int Lines)> ResolveOrderLinesAsync(
        PostbackDb db, WriteGate gate, long organizationId, string sku, Product product, TimeProvider time, CancellationToken ct)
    {
        // Orders keep their items as JSON; this finds the candidates, the loop below checks them.
        var needle = "\"sku\":" + JsonSerializer.Serialize(sku);
        for (var attempt = 1; ; attempt++)
        {
            db.ChangeTracker.Clear();
            var rows = await db.Orders.Where(o => o.OrganizationId == organizationId && o.Data.Contains(needle)).ToListAsync(ct);
            var orders = 0;
            var lines = 0;
            foreach (var row in rows)
            {
                var order = OrderJson.Deserialize(row.Data);
                var changed = 0;
                var items = order.Items.Select(i =>
                {
                    if (i.ProductId is null && string.Equals(i.Sku, sku, StringComparison.Ordinal))
                    {
                        changed++;
                        return SkuResolver.Link(i, product);
                    }
                    return i;
                }).ToList();
                if (changed == 0)
                {
                    continue;
                }
                row.Data = OrderJson.Serialize(new OrderData { OrderId = order.OrderId, Fields = order.Fields, Items = items });
                row.Version++;
                row.UpdatedAt = time.GetUtcNow();
                orders++;
                lines += changed;
            }
            try
            {
                using (await gate.EnterAsync(ct))
                {
                    await db.SaveChangesAsync(ct);
                }
                return (orders, lines);
            }
            catch (DbUpdateConcurrencyException) when (attempt < 5)
            {
            }
        }
    }
}
