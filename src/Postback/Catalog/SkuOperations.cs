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
                errors.Add("productId", $"there is no product '{Text.Clip(productId, 65, "…")}' in any campaign");
            }
        }
        if (errors.Any)
        {
            return new LinkResult(null, 0, 0, false, errors);
        }

        var now = time.GetUtcNow();
        // A SKU that was kept as unknown (import off) can be linked too: the link is made here.
        ImportedSku row;
        for (var attempt = 1; ; attempt++)
        {
            db.ChangeTracker.Clear();
            var found = await db.ImportedSkus.FirstOrDefaultAsync(s => s.OrganizationId == organizationId && s.Sku == sku, ct);
            row = found ?? db.ImportedSkus.Add(new ImportedSku { OrganizationId = organizationId, Sku = sku, FirstSeenAt = now }).Entity;
            row.ProductId = product!.ProductId;
            row.LinkedAt = now;
            row.ResolvePending = true;
            try
            {
                using (await gate.EnterAsync(ct))
                {
                    await db.SaveChangesAsync(ct);
                }
                break;
            }
            catch (DbUpdateException) when (attempt < 3)
            {
                // A postback imported the same SKU at the same moment: link that row.
            }
        }
        var (orders, lines, complete) = await ResolveOrderLinesAsync(db, gate, time, organizationId, sku, product!, ct);
        if (complete)
        {
            await ClearPendingAsync(db, gate, row.Id, product!.ProductId, ct);
            row.ResolvePending = false;
        }
        return new LinkResult(row, orders, lines, complete, errors);
    }

    /// The background pass: finishes the line resolution of links a link call left incomplete
    /// (conflicts, a crash, a client that went away). Returns the lines it resolved.
    public static async Task<int> ResolvePendingAsync(PostbackDb db, WriteGate gate, TimeProvider time, CancellationToken ct)
    {
        db.ChangeTracker.Clear();
        var pending = await db.ImportedSkus.AsNoTracking().Where(s => s.ResolvePending && s.ProductId != null)
            .OrderBy(s => s.Id).Take(100).ToListAsync(ct);
        var total = 0;
        foreach (var link in pending)
        {
            var product = await FindProductAsync(db, link.OrganizationId, link.ProductId!, ct);
            if (product is not null)
            {
                var (_, lines, complete) = await ResolveOrderLinesAsync(db, gate, time, link.OrganizationId, link.Sku, product, ct);
                total += lines;
                if (!complete)
                {
                    continue;
                }
            }
            await ClearPendingAsync(db, gate, link.Id, link.ProductId!, ct);
        }
        return total;
    }

    /// Closes the race between a postback and a link (README, "Inbound plugins"): a postback
    /// that found no link for some SKUs calls this after its order is committed. A link that
    /// committed before the postback's order scanned the orders too early to see it; this read
    /// comes after the order's commit, so it sees that link. Returns the SKUs it resolved.
    public static async Task<IReadOnlyList<string>> ResolveLateLinksAsync(
        PostbackDb db, WriteGate gate, TimeProvider time, long organizationId, long orderId, IReadOnlyList<string> skus, CancellationToken ct)
    {
        db.ChangeTracker.Clear();
        var links = await db.ImportedSkus.AsNoTracking()
            .Where(s => s.OrganizationId == organizationId && s.ProductId != null && skus.Contains(s.Sku))
            .ToListAsync(ct);
        var bySku = new Dictionary<string, Product>(StringComparer.Ordinal);
        foreach (var link in links)
        {
            if (await FindProductAsync(db, organizationId, link.ProductId!, ct) is { } product)
            {
                bySku[link.Sku] = product;
            }
        }
        if (bySku.Count == 0)
        {
            return [];
        }
        for (var attempt = 1; ; attempt++)
        {
            db.ChangeTracker.Clear();
            var row = await db.Orders.FirstOrDefaultAsync(o => o.OrganizationId == organizationId && o.OrderId == orderId, ct);
            if (row is null || Apply(row, bySku, time.GetUtcNow()) == 0)
            {
                return bySku.Keys.ToList();
            }
            try
            {
                using (await gate.EnterAsync(ct))
                {
                    await db.SaveChangesAsync(ct);
                }
                return bySku.Keys.ToList();
            }
            catch (DbUpdateConcurrencyException) when (attempt < MaxBatchAttempts)
            {
            }
        }
    }

    private static Task<Product?> FindProductAsync(PostbackDb db, long organizationId, string productId, CancellationToken ct) =>
        db.Products.AsNoTracking().Where(p => p.OrganizationId == organizationId && p.ProductId == productId).OrderBy(p => p.Id).FirstOrDefaultAsync(ct);

    private static async Task ClearPendingAsync(PostbackDb db, WriteGate gate, long id, string productId, CancellationToken ct)
    {
        // Only if nobody linked it elsewhere meanwhile: that link's own pass owns the flag then.
        using (await gate.EnterAsync(ct))
        {
            await db.ImportedSkus.Where(s => s.Id == id && s.ProductId == productId).ExecuteUpdateAsync(u => u.SetProperty(s => s.ResolvePending, false), ct);
        }
    }

    /// Gives the stored order lines that carry the SKU and no product the linked product, in
    /// batches of ResolveBatch orders, one transaction each, walking the orders by id. Each
    /// order is written with its version checked, so a postback merging into it at the same time
    /// is not overwritten: the batch is read again and retried. Memory and transaction size stay
    /// bounded however many orders carry the SKU.
    private static async Task<(int Orders, int Lines, bool Complete)> ResolveOrderLinesAsync(
        PostbackDb db, WriteGate gate, TimeProvider time, long organizationId, string sku, Product product, CancellationToken ct)
    {
        // Orders keep their items as JSON; this finds the candidates, Apply checks them.
        var needle = "\"sku\":" + JsonSerializer.Serialize(sku);
        var bySku = new Dictionary<string, Product>(StringComparer.Ordinal) { [sku] = product };
        long afterId = 0;
        var orders = 0;
        var lines = 0;
        while (true)
        {
            for (var attempt = 1; ; attempt++)
            {
                db.ChangeTracker.Clear();
                var rows = await db.Orders
                    .Where(o => o.OrganizationId == organizationId && o.Id > afterId && o.Data.Contains(needle))
                    .OrderBy(o => o.Id).Take(ResolveBatch).ToListAsync(ct);
                if (rows.Count == 0)
                {
                    return (orders, lines, true);
                }
                var now = time.GetUtcNow();
                var batchOrders = 0;
                var batchLines = 0;
                foreach (var row in rows)
                {
                    var changed = Apply(row, bySku, now);
                    batchOrders += changed > 0 ? 1 : 0;
                    batchLines += changed;
                }
                try
                {
                    if (batchOrders > 0)
                    {
                        using (await gate.EnterAsync(ct))
                        {
                            await db.SaveChangesAsync(ct);
                        }
                    }
                    orders += batchOrders;
                    lines += batchLines;
                    afterId = rows[^1].Id;
                    break;
                }
                catch (DbUpdateConcurrencyException) when (attempt < MaxBatchAttempts)
                {
                }
                catch (DbUpdateConcurrencyException)
                {
                    db.ChangeTracker.Clear();
                    return (orders, lines, false);
                }
            }
        }
    }

    /// Links the order's lines that carry one of the SKUs and no product; returns how many.
    private static int Apply(StoredOrder row, IReadOnlyDictionary<string, Product> bySku, DateTimeOffset now)
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
