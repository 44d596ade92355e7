using Microsoft.EntityFrameworkCore;
using Postback.Orders;
using Postback.Plugins;
using Postback.Storage;

namespace Postback.Catalog;

/// "Import non-existing SKUs": an unknown SKU becomes a plain-text catalog entry, not linked to
/// any product, until an operator links it. The rows are only added to the context here: the
/// postback saves them in the same transaction as its order, event and inbound log entry, so a
/// postback is stored whole or not at all. Idempotent: a SKU already there is not added again,
/// and a race with another postback importing the same SKU fails the unique index, after which
/// the ingest reads again and adds only the rest.
public static class SkuImport
{
    public static async Task<IReadOnlyList<string>> AddAsync(
        PostbackDb db, PluginInstance instance, IReadOnlyList<OrderItem> unknown, DateTimeOffset now, CancellationToken ct)
    {
        var wanted = unknown.GroupBy(i => i.Sku!, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Name, StringComparer.Ordinal);
        var skus = wanted.Keys.ToList();
        var existing = await db.ImportedSkus.AsNoTracking()
            .Where(s => s.OrganizationId == instance.OrganizationId && skus.Contains(s.Sku))
            .Select(s => s.Sku)
            .ToListAsync(ct);
        var added = skus.Except(existing, StringComparer.Ordinal).ToList();
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
        return added;
    }
}
