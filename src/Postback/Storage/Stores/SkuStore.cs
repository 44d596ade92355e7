using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Postback.Catalog;
using Postback.Orders;

namespace Postback.Storage.Stores;

/// The writes behind linking imported SKUs to products (Catalog/SkuOperations.cs): the link
/// itself, and the stored order lines it resolves, each under the write gate.
public sealed class SkuStore(IServiceScopeFactory scopes, WriteGate gate, TimeProvider time) : ISkuStore
{
    private const int ResolveBatch = SkuOperations.ResolveBatch;
    private const int MaxBatchAttempts = SkuOperations.MaxBatchAttempts;

    /// Links the SKU (a row made for it when none exists) to the product and resolves the
    /// stored lines that carry it; Complete is false when postbacks kept changing the same
    /// orders (the row stays ResolvePending for the background pass).
    public async Task<(ImportedSku Sku, int ResolvedOrders, int ResolvedLines, bool Complete)> LinkAsync(
        long organizationId, string sku, Product product, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var now = time.GetUtcNow();
        // A SKU that was kept as unknown (import off) can be linked too: the link is made here.
        ImportedSku row;
        for (var attempt = 1; ; attempt++)
        {
            db.ChangeTracker.Clear();
            var found = await db.ImportedSkus.FirstOrDefaultAsync(s => s.OrganizationId == organizationId && s.Sku == sku, ct);
            row = found ?? db.ImportedSkus.Add(new ImportedSku { OrganizationId = organizationId, Sku = sku, FirstSeenAt = now }).Entity;
            row.ProductId = product.ProductId;
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
        var (orders, lines, complete) = await ResolveOrderLinesAsync(db, organizationId, sku, product, ct);
        if (complete)
        {
            await ClearPendingAsync(db, row.Id, product.ProductId, ct);
            row.ResolvePending = false;
        }
        return (row, orders, lines, complete);
    }

    /// The background pass: finishes the line resolution of links a link call left incomplete
    /// (conflicts, a crash, a client that went away). Returns the lines it resolved.
    public async Task<int> ResolvePendingAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var pending = await db.ImportedSkus.AsNoTracking().Where(s => s.ResolvePending && s.ProductId != null)
            .OrderBy(s => s.Id).Take(100).ToListAsync(ct);
        var total = 0;
        foreach (var link in pending)
        {
            var product = await FindProductAsync(db, link.OrganizationId, link.ProductId!, ct);
            if (product is not null)
            {
                var (_, lines, complete) = await ResolveOrderLinesAsync(db, link.OrganizationId, link.Sku, product, ct);
                total += lines;
                if (!complete)
                {
                    continue;
                }
            }
            await ClearPendingAsync(db, link.Id, link.ProductId!, ct);
        }
        return total;
    }

    /// Closes the race between a postback and a link (README, "Inbound plugins"): a postback
    /// that found no link for some SKUs calls this after its order is committed. A link that
    /// committed before the postback's order scanned the orders too early to see it; this read
    /// comes after the order's commit, so it sees that link. Returns the SKUs it resolved.
    public async Task<IReadOnlyList<string>> ResolveLateLinksAsync(long organizationId, long orderId, IReadOnlyList<string> skus, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
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
            if (row is null || SkuOperations.Apply(row, bySku, time.GetUtcNow()) == 0)
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

    private async Task ClearPendingAsync(PostbackDb db, long id, string productId, CancellationToken ct)
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
    private async Task<(int Orders, int Lines, bool Complete)> ResolveOrderLinesAsync(
        PostbackDb db, long organizationId, string sku, Product product, CancellationToken ct)
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
                    var changed = SkuOperations.Apply(row, bySku, now);
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
}
