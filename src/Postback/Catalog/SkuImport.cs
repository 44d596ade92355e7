using Microsoft.EntityFrameworkCore;
using Postback.Orders;
using Postback.Plugins;
using Postback.Storage;

namespace Postback.Catalog;

/// "Import non-existing SKUs": an unknown SKU becomes a plain-text catalog entry, not linked to
/// any product, until an operator links it. Runs after the order is stored; importing is
/// idempotent, so a repeat of the postback (or a race with another one) imports nothing twice.
public static class SkuImport
{
    public static async Task<IReadOnlyList<string>> ImportAsync(
        PostbackDb db, WriteGate gate, PluginInstance instance, IReadOnlyList<OrderItem> unknown, DateTimeOffset now, CancellationToken ct)
    {
        var wanted = unknown.GroupBy(i => i.Sku!, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Name, StringComparer.Ordinal);
        for (var attempt = 1; ; attempt++)
        {
            var skus = wanted.Keys.ToList();
            var existing = await db.ImportedSkus.AsNoTracking()
                .Where(s => s.OrganizationId == instance.OrganizationId && skus.Contains(s.Sku))
                .Select(s => s.Sku)
                .ToListAsync(ct);
            var added = skus.Except(existing, StringComparer.Ordinal).ToList();
            if (added.Count == 0)
            {
                return [];
            }
            db.ChangeTracker.Clear();
            foreach (var sku in added)
            {
                db.ImportedSkus.Add(new ImportedSku
                {
                    OrganizationId = instance.OrganizationId,
                    Sku = sku,
                    Name = wanted[sku],
                    PluginInstanceId = instance.Id,
                    FirstSeenAt = now,
                });
            }
            try
            {
                using (await gate.EnterAsync(ct))
                {
                    await db.SaveChangesAsync(ct);
                }
                return added;
            }
            catch (DbUpdateException) when (attempt < 5)
            {
                // Another postback imported one of them first: read again and add the rest.
                db.ChangeTracker.Clear();
            }
        }
    }
}
