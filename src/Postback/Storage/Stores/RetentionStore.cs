using Microsoft.EntityFrameworkCore;
using Postback.Confirmations;
using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.FileExports;
using Postback.Notifications;
using Postback.Orders;
using Postback.Plugins;
using Postback.Retention;

namespace Postback.Storage.Stores;

/// The deletes behind retention (Retention/RetentionSweep.cs), each one bounded batch at a
/// time, and a customer's erasure. Every batch picks its rows
/// with a read outside the write gate, then deletes them in one short transaction under it:
/// on SQLite the single writer is held for one batch (a few milliseconds), never for a whole
/// sweep, so event ingest keeps its latency while a million rows go (bench/run.sh --sweep).
/// Each delete repeats the condition that picked the row, so a row that changed in between
/// (a delivery retried, an order updated) is left alone.
public class RetentionStore(IServiceScopeFactory scopes, WriteGate gate) : IRetentionStore
{
    /// Succeeded, failed and cancelled deliveries finished before the cutoff, with their
    /// attempts. Their history lines stay, marked expired, keeping the final status.
    public async Task<RemovedCounts> DeleteFinishedDeliveriesAsync(DateTimeOffset cutoff, DateTimeOffset now, int batch, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var removed = new RemovedCounts();
        var rows = await db.Deliveries.AsNoTracking()
            .Where(d => d.CompletedAt != null && d.CompletedAt < cutoff && d.Status != DeliveryStatus.Pending)
            .OrderBy(d => d.CompletedAt)
            .Select(d => new { d.Id, d.Status })
            .Take(batch)
            .ToListAsync(ct);
        if (rows.Count == 0)
        {
            return removed;
        }
        var ids = rows.Select(r => r.Id).ToList();
        using (await gate.EnterAsync(ct))
        {
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            removed.DeliveryAttempts = await db.DeliveryAttempts
                .Where(a => ids.Contains(a.DeliveryId)
                    && db.Set<Delivery>().Any(d => d.Id == a.DeliveryId && d.CompletedAt != null && d.CompletedAt < cutoff && d.Status != DeliveryStatus.Pending))
                .ExecuteDeleteAsync(ct);
            removed.Deliveries = await db.Deliveries
                .Where(d => ids.Contains(d.Id) && d.CompletedAt != null && d.CompletedAt < cutoff && d.Status != DeliveryStatus.Pending)
                .ExecuteDeleteAsync(ct);
            foreach (var status in rows.GroupBy(r => r.Status))
            {
                var gone = status.Select(r => r.Id).ToList();
                var final = status.Key;
                removed.HistoryLinesExpired += await db.History
                    .Where(h => h.DeliveryId != null && gone.Contains(h.DeliveryId.Value) && h.DetailsExpiredAt == null
                        && !db.Set<Delivery>().Any(d => d.Id == h.DeliveryId))
                    .ExecuteUpdateAsync(s => s.SetProperty(h => h.DetailsExpiredAt, (DateTimeOffset?)now).SetProperty(h => h.Status, final), ct);
            }
            await transaction.CommitAsync(ct);
        }
        return removed;
    }

    /// Succeeded and failed file runs finished before the cutoff, with the file each kept for
    /// download. A run whose day the scheduler may still look at (its catch-up window) stays
    /// whatever its age: deleting it would make the scheduler create and upload that day again.
    public async Task<int> DeleteFinishedFileRunsAsync(DateTimeOffset cutoff, DateTimeOffset now, int batch, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var dayBefore = FileExports.FileRunSchedule.FirstDayStillScheduled(now);
        var ids = await FinishedFileRuns(db, cutoff, dayBefore).OrderBy(r => r.CompletedAt).Select(r => r.Id).Take(batch).ToListAsync(ct);
        if (ids.Count == 0)
        {
            return 0;
        }
        using (await gate.EnterAsync(ct))
        {
            // Again under the gate: a run asked for again in between (pending once more) stays.
            return await FinishedFileRuns(db, cutoff, dayBefore).Where(r => ids.Contains(r.Id)).ExecuteDeleteAsync(ct);
        }
    }

    private static IQueryable<FileExports.FileRun> FinishedFileRuns(PostbackDb db, DateTimeOffset cutoff, string dayBefore) =>
        db.FileRuns.Where(r => r.Status != FileExports.FileRunStatus.Pending && r.CompletedAt != null && r.CompletedAt < cutoff
            && string.Compare(r.Day, dayBefore) < 0);

    /// Inbound log entries received before the cutoff.
    public async Task<int> DeleteInboundLogAsync(DateTimeOffset cutoff, int batch, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var ids = await db.InboundLog.AsNoTracking().Where(e => e.ReceivedAt < cutoff)
            .OrderBy(e => e.ReceivedAt).Select(e => e.Id).Take(batch).ToListAsync(ct);
        if (ids.Count == 0)
        {
            return 0;
        }
        using (await gate.EnterAsync(ct))
        {
            return await db.InboundLog.Where(e => ids.Contains(e.Id) && e.ReceivedAt < cutoff).ExecuteDeleteAsync(ct);
        }
    }

    /// Sent and refused alert e-mails created before the cutoff (pending ones stay).
    public async Task<int> DeleteFinishedEmailsAsync(DateTimeOffset cutoff, int batch, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var ids = await db.EmailOutbox.AsNoTracking()
            .Where(m => m.Status != Notifications.EmailStatus.Pending && m.CreatedAt < cutoff)
            .OrderBy(m => m.Id).Select(m => m.Id).Take(batch).ToListAsync(ct);
        if (ids.Count == 0)
        {
            return 0;
        }
        using (await gate.EnterAsync(ct))
        {
            return await db.EmailOutbox.Where(m => ids.Contains(m.Id) && m.Status != Notifications.EmailStatus.Pending).ExecuteDeleteAsync(ct);
        }
    }

    /// Orders not updated since the cutoff and with nothing pending (no delivery, no
    /// confirmation), with everything hanging off them. Their history lines stay, marked expired.
    public async Task<RemovedCounts> DeleteIdleOrdersAsync(DateTimeOffset cutoff, DateTimeOffset now, int batch, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        var picked = await IdleOrders(db, cutoff).OrderBy(o => o.UpdatedAt).Select(o => o.Id).Take(batch).ToListAsync(ct);
        if (picked.Count == 0)
        {
            return new RemovedCounts();
        }
        using (await gate.EnterAsync(ct))
        {
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            // Again inside the transaction: an event may have arrived for one of them since.
            var orders = await IdleOrders(db, cutoff).Where(o => picked.Contains(o.Id))
                .Select(o => new { o.Id, o.OrganizationId, o.OrderId }).ToListAsync(ct);
            var removed = new RemovedCounts();
            if (orders.Count > 0)
            {
                foreach (var organization in orders.GroupBy(o => o.OrganizationId))
                {
                    var orderIds = organization.Select(o => o.OrderId).ToList();
                    var organizationId = organization.Key;
                    // The lines' own status is what the customer page shows once the delivery is gone.
                    removed.HistoryLinesExpired += await ExpireHistoryOfOrdersAsync(db, organizationId, orderIds, now, ct);
                }
                removed.Add(await RemoveOrdersAsync(db, orders.Select(o => o.Id).ToList(), [], ct));
            }
            await transaction.CommitAsync(ct);
            return removed;
        }
    }

    private static IQueryable<Orders.StoredOrder> IdleOrders(PostbackDb db, DateTimeOffset cutoff) =>
        db.Orders.AsNoTracking().Where(o => o.UpdatedAt < cutoff
            && !db.Set<Delivery>().Any(d => d.OrderKey == o.Id && d.Status == DeliveryStatus.Pending)
            && !db.Set<OrderConfirmation>().Any(c => c.OrderKey == o.Id && c.Status == ConfirmationStatus.Pending));

    private static async Task<int> ExpireHistoryOfOrdersAsync(PostbackDb db, long organizationId, List<long> orderIds, DateTimeOffset now, CancellationToken ct)
    {
        var expired = 0;
        // An export line's status comes from its delivery, which is about to go: keep it on the line.
        foreach (var status in DeliveryStatus.All)
        {
            var s = status;
            expired += await db.History
                .Where(h => h.OrganizationId == organizationId && orderIds.Contains(h.OrderId) && h.DetailsExpiredAt == null && h.DeliveryId != null
                    && db.Set<Delivery>().Any(d => d.Id == h.DeliveryId && d.Status == s))
                .ExecuteUpdateAsync(u => u.SetProperty(h => h.DetailsExpiredAt, (DateTimeOffset?)now).SetProperty(h => h.Status, s), ct);
        }
        expired += await db.History
            .Where(h => h.OrganizationId == organizationId && orderIds.Contains(h.OrderId) && h.DetailsExpiredAt == null)
            .ExecuteUpdateAsync(u => u.SetProperty(h => h.DetailsExpiredAt, (DateTimeOffset?)now), ct);
        return expired;
    }

    /// Deletes the orders (by key) with their events, deliveries and attempts, confirmations
    /// and their attempts and alert e-mails, and the further deliveries named: children first,
    /// so no foreign-key cascade does hidden work. Runs inside the caller's transaction.
    private static async Task<RemovedCounts> RemoveOrdersAsync(PostbackDb db, List<long> orderKeys, List<long> moreDeliveries, CancellationToken ct)
    {
        var removed = new RemovedCounts();
        var deliveryIds = await db.Deliveries.Where(d => orderKeys.Contains(d.OrderKey)).Select(d => d.Id).ToListAsync(ct);
        deliveryIds = deliveryIds.Union(moreDeliveries).ToList();
        removed.DeliveryAttempts = await db.DeliveryAttempts.Where(a => deliveryIds.Contains(a.DeliveryId)).ExecuteDeleteAsync(ct);
        removed.Deliveries = await db.Deliveries.Where(d => deliveryIds.Contains(d.Id)).ExecuteDeleteAsync(ct);
        removed.Events = await db.OrderEvents.Where(e => orderKeys.Contains(e.OrderKey)).ExecuteDeleteAsync(ct);
        var confirmations = await db.Confirmations.Where(c => orderKeys.Contains(c.OrderKey)).Select(c => new { c.Id, c.OrganizationId }).ToListAsync(ct);
        foreach (var confirmation in confirmations)
        {
            var prefix = ConfirmationAlert.KeyPrefix(confirmation.Id);
            removed.AlertEmails += await db.EmailOutbox
                .Where(m => m.OrganizationId == confirmation.OrganizationId && m.DedupKey.StartsWith(prefix)).ExecuteDeleteAsync(ct);
        }
        var confirmationIds = confirmations.Select(c => c.Id).ToList();
        removed.ConfirmationAttempts = await db.ConfirmationAttempts.Where(a => confirmationIds.Contains(a.ConfirmationId)).ExecuteDeleteAsync(ct);
        removed.Confirmations = await db.Confirmations.Where(c => confirmationIds.Contains(c.Id)).ExecuteDeleteAsync(ct);
        removed.Orders = await db.Orders.Where(o => orderKeys.Contains(o.Id)).ExecuteDeleteAsync(ct);
        return removed;
    }

    /// Erases one customer of one organization: pending deliveries cancelled first, then the
    /// orders with everything hanging off them, the history lines (and the deliveries they name),
    /// the inbound log entries of those orders or whose payload names the customer, and the
    /// files file runs kept of the days that held their rows. One
    /// transaction: an erasure is all done or not at all. On SQLite secure_delete is on
    /// (StorageSetup), so the erased values are overwritten rather than left in free pages.
    public async Task<ErasureCounts> EraseCustomerAsync(long organizationId, string customerId, DateTimeOffset now, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        using (await gate.EnterAsync(ct))
        {
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            var orders = await db.Orders.AsNoTracking().Where(o => o.OrganizationId == organizationId && o.CustomerId == customerId)
                .Select(o => new { o.Id, o.OrderId }).ToListAsync(ct);
            var orderKeys = orders.Select(o => o.Id).ToList();
            var orderIds = orders.Select(o => o.OrderId).ToList();
            // Exports fired for the customer under an order that has since changed hands.
            var named = await db.History.AsNoTracking()
                .Where(h => h.OrganizationId == organizationId && h.CustomerId == customerId && h.DeliveryId != null)
                .Select(h => h.DeliveryId!.Value).ToListAsync(ct);
            var moreDeliveries = await db.Deliveries.AsNoTracking()
                .Where(d => d.OrganizationId == organizationId && named.Contains(d.Id)).Select(d => d.Id).ToListAsync(ct);

            // Cancelled first, so nothing of the customer's goes out from here on; a worker
            // already sending one finds its lease gone when it records the answer, and records
            // nothing.
            var cancelled = await db.Deliveries
                .Where(d => (orderKeys.Contains(d.OrderKey) || moreDeliveries.Contains(d.Id)) && d.Status == DeliveryStatus.Pending)
                .ExecuteUpdateAsync(s => s
                    .SetProperty(d => d.Status, DeliveryStatus.Cancelled)
                    .SetProperty(d => d.CompletedAt, (DateTimeOffset?)now)
                    .SetProperty(d => d.LeaseOwner, (string?)null)
                    .SetProperty(d => d.LeaseUntil, (DateTimeOffset?)null), ct);

            // Before the events go: they say which days' files held the customer's rows.
            var files = await ForgetKeptFilesAsync(db, organizationId, orderKeys, ct);
            var removed = await RemoveOrdersAsync(db, orderKeys, moreDeliveries, ct);
            var history = await db.History
                .Where(h => h.OrganizationId == organizationId && (h.CustomerId == customerId || orderIds.Contains(h.OrderId)))
                .ExecuteDeleteAsync(ct);
            var inbound = await InboundLogOf(db, organizationId, customerId, orderIds).ExecuteDeleteAsync(ct);
            await transaction.CommitAsync(ct);
            await AfterErasureAsync(db);
            return new ErasureCounts(customerId, cancelled, removed.Orders, removed.Events, removed.Deliveries, removed.DeliveryAttempts,
                history, removed.Confirmations, removed.ConfirmationAttempts, removed.AlertEmails, inbound, files);
        }
    }

    /// The CSVs file runs keep for download (GET .../runs/{runId}/file) hold the rows of every
    /// order of their day. For each file profile of the organization, the days on which one of
    /// these orders' events was due (event time + the profile's export delay, in its zone, as
    /// FileRows assigns them) lose their kept files; the runs' records stay. A re-run of such a
    /// day renders from the orders as they are, so without the erased customer.
    private static async Task<int> ForgetKeptFilesAsync(PostbackDb db, long organizationId, List<long> orderKeys, CancellationToken ct)
    {
        if (orderKeys.Count == 0)
        {
            return 0;
        }
        var times = await db.OrderEvents.AsNoTracking()
            .Where(e => e.OrganizationId == organizationId && orderKeys.Contains(e.OrderKey)).Select(e => e.OccurredAt).ToListAsync(ct);
        if (times.Count == 0)
        {
            return 0;
        }
        var profiles = await db.ExportProfiles.AsNoTracking()
            .Where(p => p.OrganizationId == organizationId && p.Type == ExportProfiles.ExportTypes.File).ToListAsync(ct);
        var cleared = 0;
        foreach (var profile in profiles)
        {
            if (profile.File is not { } file)
            {
                continue;
            }
            var zone = FileExports.FileDays.FindTimeZone(file.Schedule.TimeZone) ?? TimeZoneInfo.Utc;
            var delay = TimeSpan.FromMinutes(profile.ExportDelayMinutes);
            var days = times.Select(t => FileExports.FileDays.Format(FileExports.FileDays.DayOf(t + delay, zone))).Distinct().ToList();
            var profileId = profile.Id;
            cleared += await db.FileRuns.Where(r => r.ProfileId == profileId && r.Content != null && days.Contains(r.Day))
                .ExecuteUpdateAsync(u => u.SetProperty(r => r.Content, (byte[]?)null), ct);
        }
        return cleared;
    }

    /// Runs after an erasure committed, still under the write gate (Storage/Sqlite clears the
    /// write-ahead log of the erased rows' earlier versions).
    protected virtual Task AfterErasureAsync(PostbackDb db) => Task.CompletedTask;

    /// The organization's inbound log entries about the customer: those of their orders, and
    /// any whose payload (form-encoded, as PostbackReader.ForLog writes it) carries their
    /// customerId, such as a postback refused before an order was stored.
    private static IQueryable<Plugins.InboundLogEntry> InboundLogOf(PostbackDb db, long organizationId, string customerId, List<long> orderIds)
    {
        var value = EscapeLike("customerId=" + Uri.EscapeDataString(customerId));
        var inside = "%" + value + "&%";
        var last = "%" + value;
        return db.InboundLog.Where(e => e.OrganizationId == organizationId
            && ((e.OrderId != null && orderIds.Contains(e.OrderId.Value))
                || EF.Functions.Like(e.Payload, inside, "\\") || EF.Functions.Like(e.Payload, last, "\\")));
    }

    private static string EscapeLike(string s) => s.Replace("\\", "\\\\").Replace("%", "\\%").Replace("_", "\\_");
}
