using Microsoft.EntityFrameworkCore;
using Postback.Catalog;
using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.Ingest;
using Postback.Orders;
using Postback.Plugins;

namespace Postback.Storage.Stores;

/// How an ingest's rows reach the database (Ingest/EventIngest.cs builds them; the orders it
/// read are tracked by the context, the new orders, events and deliveries are not):
/// Storage/Sqlite writes them with prepared statements, Storage/Postgres with one INSERT per
/// table. Either way, they and everything else the context tracks are stored in
/// one transaction, under the write gate.
public abstract class IngestStore : IIngestStore
{
    /// The lookups as LINQ queries, one after another (SQLite: in-process, each costs no round
    /// trip); PostgreSQL sends them together (Storage/Postgres).
    public virtual async Task<IngestReads> ReadAsync(PostbackDb db, long organizationId, IngestKeys keys, CancellationToken ct)
    {
        var events = keys.EventIds.Count == 0
            ? []
            : await db.OrderEvents.AsNoTracking()
                .Where(e => e.OrganizationId == organizationId && keys.EventIds.Contains(e.EventId))
                .ToDictionaryAsync(e => e.EventId, ct);
        var orders = await db.Orders
            .Where(o => o.OrganizationId == organizationId && keys.OrderIds.Contains(o.OrderId))
            .ToDictionaryAsync(o => o.OrderId, ct);
        var profiles = await RoutingProfiles(db, organizationId).ToListAsync(ct);
        var recurring = profiles.Count == 0 || keys.ProductIds.Count == 0
            ? []
            : (await db.Products.AsNoTracking()
                .Where(p => p.OrganizationId == organizationId && p.Recurring && keys.ProductIds.Contains(p.ProductId))
                .Select(p => p.ProductId)
                .ToListAsync(ct)).ToHashSet(StringComparer.Ordinal);
        var campaignNames = profiles.Count == 0 || keys.CampaignIds.Count == 0
            ? []
            : await db.Campaigns.AsNoTracking()
                .Where(c => c.OrganizationId == organizationId && keys.CampaignIds.Contains(c.CampaignId))
                .ToDictionaryAsync(c => c.CampaignId, c => c.Name, ct);
        return new IngestReads(events, orders, profiles, recurring, campaignNames);
    }

    /// The profiles that route an organization's events, by id. A file profile's rows are read
    /// from the events when its day's file is rendered: an event schedules no delivery for it.
    protected static IQueryable<ExportProfile> RoutingProfiles(PostbackDb db, long organizationId) =>
        db.ExportProfiles.AsNoTracking()
            .Where(p => p.OrganizationId == organizationId && p.Enabled && p.Type != ExportTypes.File)
            .OrderBy(p => p.Id);

    /// Adds what an inbound postback stores with its event to the context, for SaveAsync to
    /// store in the same transaction, so a postback is stored whole or not at all: the SKUs the
    /// organization does not have yet ("Import non-existing SKUs": a plain-text catalog entry,
    /// unlinked until an operator links it; one that another event of this ingest imports, in
    /// `staged`, is not added twice), and its inbound-log row for the event's result. A race
    /// with another postback importing the same SKU fails the unique index; the ingest then
    /// reads again and adds only the rest. Returns the SKUs it imports.
    public async Task<IReadOnlyList<string>> StageInboundAsync(
        PostbackDb db, long organizationId, InboundPostback inbound, IngestedEvent result, HashSet<string> staged, CancellationToken ct)
    {
        var added = new List<string>();
        if (inbound.ImportSkus.Count > 0)
        {
            var wanted = inbound.ImportSkus.Select(s => s.Sku).Distinct(StringComparer.Ordinal).ToList();
            var existing = await db.ImportedSkus.AsNoTracking()
                .Where(s => s.OrganizationId == organizationId && wanted.Contains(s.Sku))
                .Select(s => s.Sku)
                .ToListAsync(ct);
            foreach (var sku in inbound.ImportSkus.DistinctBy(s => s.Sku, StringComparer.Ordinal))
            {
                if (existing.Contains(sku.Sku, StringComparer.Ordinal) || !staged.Add(sku.Sku))
                {
                    continue;
                }
                db.ImportedSkus.Add(new Catalog.ImportedSku
                {
                    OrganizationId = organizationId,
                    Sku = sku.Sku,
                    Name = sku.Name,
                    PluginInstanceId = inbound.PluginInstanceId,
                    FirstSeenAt = inbound.Log.ReceivedAt,
                });
                added.Add(sku.Sku);
            }
        }
        var log = inbound.Log;
        var outcome = result.Duplicate ? log.IfDuplicate : log.IfNew;
        db.InboundLog.Add(new Plugins.InboundLogEntry
        {
            OrganizationId = organizationId,
            PluginInstanceId = inbound.PluginInstanceId,
            ReceivedAt = log.ReceivedAt,
            Method = log.Method,
            Outcome = outcome.Outcome,
            StatusCode = outcome.StatusCode,
            Reason = outcome.Reason,
            OrderId = result.Event.OrderId,
            EventId = result.Event.EventId,
            CustomerType = log.CustomerType,
            Payload = log.Payload,
        });
        return added;
    }

    /// Stores the orders, events and deliveries (and whatever else the context tracks). A
    /// concurrent writer's change (an order's version, a unique index) ends in a DbUpdateException.
    public abstract Task SaveAsync(
        PostbackDb db, IReadOnlyList<StoredOrder> orders, IReadOnlyList<OrderEvent> events, IReadOnlyList<Delivery> deliveries, CancellationToken ct);
}
