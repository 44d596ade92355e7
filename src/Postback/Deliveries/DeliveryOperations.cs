using Microsoft.EntityFrameworkCore;
using Postback.Storage;

namespace Postback.Deliveries;

public enum RetryOutcome
{
    Done,
    NotFound,
    InFlight,
    NotPending,
    // An ordered delivery while a later one of its order and profile is pending: sending the
    // earlier one again now would put it out of order, or in flight beside the later one.
    LaterPending,
}

/// What the operations API and the admin pages both do with deliveries.
public static class DeliveryOperations
{
    public const int MaxBulk = 100_000;

    public static async Task<DeliveryPage> ListAsync(
        PostbackDb db, long organizationId, DateTimeOffset now, long? profileId, string? status, long? orderId,
        DateTimeOffset? from, DateTimeOffset? to, long? before, int take, CancellationToken ct)
    {
        var query = Filter(db.Deliveries.AsNoTracking().Where(d => d.OrganizationId == organizationId), profileId, status, from, to);
        if (orderId is not null)
        {
            query = query.Where(d => d.OrderId == orderId);
        }
        if (before is not null)
        {
            query = query.Where(d => d.Id < before);
        }
        var rows = await query.OrderByDescending(d => d.Id).Take(take + 1).ToListAsync(ct);
        var items = rows.Take(take).Select(d => DeliveryView.From(d, now)).ToList();
        return new DeliveryPage(items, rows.Count > take ? items[^1].Id : null);
    }

    public static async Task<(Delivery? Delivery, List<DeliveryAttempt> Attempts)> GetAsync(PostbackDb db, long organizationId, long id, CancellationToken ct)
    {
        var delivery = await db.Deliveries.AsNoTracking().FirstOrDefaultAsync(d => d.OrganizationId == organizationId && d.Id == id, ct);
        if (delivery is null)
        {
            return (null, []);
        }
        var attempts = await db.DeliveryAttempts.AsNoTracking().Where(a => a.DeliveryId == id).OrderBy(a => a.Number).ThenBy(a => a.Id).ToListAsync(ct);
        return (delivery, attempts);
    }

    /// Makes one delivery due now, whatever its state, unless a worker holds it.
    public static async Task<(RetryOutcome Outcome, Delivery? Delivery)> RetryAsync(
        PostbackDb db, long organizationId, long id, DateTimeOffset now, DeliverySignal signal, CancellationToken ct)
    {
        // One conditional statement, so a worker claiming the delivery at the same moment
        // either wins (InFlight) or sees it already due again.
        var changed = await db.WriteInTurnAsync(() => InTurn(db, db.Deliveries
            .Where(d => d.OrganizationId == organizationId && d.Id == id && (d.LeaseUntil == null || d.LeaseUntil < now)))
            .ExecuteUpdateAsync(s => s
                .SetProperty(d => d.Status, DeliveryStatus.Pending)
                .SetProperty(d => d.DueAt, now)
                .SetProperty(d => d.CompletedAt, (DateTimeOffset?)null)
                .SetProperty(d => d.LeaseOwner, (string?)null)
                .SetProperty(d => d.LeaseUntil, (DateTimeOffset?)null), ct), ct);
        var delivery = await db.Deliveries.AsNoTracking().FirstOrDefaultAsync(d => d.OrganizationId == organizationId && d.Id == id, ct);
        if (delivery is null)
        {
            return (RetryOutcome.NotFound, null);
        }
        if (changed == 0)
        {
            return (delivery.LeaseUntil >= now ? RetryOutcome.InFlight : RetryOutcome.LaterPending, delivery);
        }
        signal.Notify();
        return (RetryOutcome.Done, delivery);
    }

    public static async Task<(RetryOutcome Outcome, Delivery? Delivery)> CancelAsync(
        PostbackDb db, long organizationId, long id, DateTimeOffset now, CancellationToken ct)
    {
        var changed = await db.WriteInTurnAsync(() => db.Deliveries
            .Where(d => d.OrganizationId == organizationId && d.Id == id && d.Status == DeliveryStatus.Pending && (d.LeaseUntil == null || d.LeaseUntil < now))
            .ExecuteUpdateAsync(s => s
                .SetProperty(d => d.Status, DeliveryStatus.Cancelled)
                .SetProperty(d => d.CompletedAt, now)
                .SetProperty(d => d.LastError, "cancelled by an operator"), ct), ct);
        Infrastructure.PostbackMetrics.DeliveriesCancelled(changed);
        var delivery = await db.Deliveries.AsNoTracking().FirstOrDefaultAsync(d => d.OrganizationId == organizationId && d.Id == id, ct);
        if (delivery is null)
        {
            return (RetryOutcome.NotFound, null);
        }
        if (changed == 0)
        {
            return (delivery.Status != DeliveryStatus.Pending ? RetryOutcome.NotPending : RetryOutcome.InFlight, delivery);
        }
        return (RetryOutcome.Done, delivery);
    }

    /// What a replay with this filter would send: how many, and how many of those already
    /// succeeded (each of those reaches its receiver a second time).
    public sealed record ReplayPreview(int Count, int AlreadySucceeded);

    /// Makes every delivery matching the filter due now; deliveries in flight are left alone:
    /// their answer is about to be recorded. Without a status it covers the failed and cancelled
    /// ones only: a succeeded delivery is sent again only when the filter names succeeded, so
    /// the default never repeats what a receiver already took.
    public static async Task<int> ReplayAsync(PostbackDb db, long organizationId, BulkFilter filter, DateTimeOffset now, DeliverySignal signal, CancellationToken ct)
    {
        var count = await db.WriteInTurnAsync(() => Replayable(db, organizationId, filter, now)
            .Take(MaxBulk)
            .ExecuteUpdateAsync(s => s
                .SetProperty(d => d.Status, DeliveryStatus.Pending)
                .SetProperty(d => d.DueAt, now)
                .SetProperty(d => d.CompletedAt, (DateTimeOffset?)null), ct), ct);
        signal.Notify();
        return count;
    }

    // Ordering's other half (the claim is the first, see Storage/Stores/DeliveryStore.cs): a finished ordered
    // delivery is made pending again only while no later one of its order and profile is
    // pending, so an earlier delivery never comes back behind, or beside, a later one. (One
    // still pending is ahead of its later ones anyway: making it due now changes no order.)
    private static IQueryable<Delivery> InTurn(PostbackDb db, IQueryable<Delivery> query) =>
        query.Where(d => !d.Ordered || d.Status == DeliveryStatus.Pending || !db.Set<Delivery>().Any(l =>
            l.OrderKey == d.OrderKey && l.ProfileId == d.ProfileId && l.Id > d.Id && l.Status == DeliveryStatus.Pending));

    public static async Task<ReplayPreview> PreviewReplayAsync(PostbackDb db, long organizationId, BulkFilter filter, DateTimeOffset now, CancellationToken ct)
    {
        var matches = Replayable(db, organizationId, filter, now).AsNoTracking();
        var count = Math.Min(MaxBulk, await matches.CountAsync(ct));
        var succeeded = Math.Min(count, await matches.CountAsync(d => d.Status == DeliveryStatus.Succeeded, ct));
        return new ReplayPreview(count, succeeded);
    }

    private static IQueryable<Delivery> Replayable(PostbackDb db, long organizationId, BulkFilter filter, DateTimeOffset now)
    {
        var query = Filter(InTurn(db, db.Deliveries.Where(d => d.OrganizationId == organizationId && (d.LeaseUntil == null || d.LeaseUntil < now))),
            filter.ProfileId, filter.Status, filter.From, filter.To);
        return filter.Status is null
            ? query.Where(d => d.Status == DeliveryStatus.Failed || d.Status == DeliveryStatus.Cancelled)
            : query;
    }

    public static IQueryable<Delivery> Filter(IQueryable<Delivery> query, long? profileId, string? status, DateTimeOffset? from, DateTimeOffset? to)
    {
        if (profileId is not null)
        {
            query = query.Where(d => d.ProfileId == profileId);
        }
        if (status is not null)
        {
            query = query.Where(d => d.Status == status);
        }
        if (from is { } f)
        {
            var utc = f.ToUniversalTime();
            query = query.Where(d => d.CreatedAt >= utc);
        }
        if (to is { } t)
        {
            var utc = t.ToUniversalTime();
            query = query.Where(d => d.CreatedAt <= utc);
        }
        return query;
    }

    public sealed record HistoryRow(HistoryEntry Entry, string? Status);

    public static async Task<List<HistoryRow>> HistoryAsync(PostbackDb db, long organizationId, string customerId, int take, CancellationToken ct)
    {
        var entries = await (
            from h in db.History.AsNoTracking()
            where h.OrganizationId == organizationId && h.CustomerId == customerId
            join d in db.Deliveries.AsNoTracking() on h.DeliveryId equals d.Id into deliveries
            from d in deliveries.DefaultIfEmpty()
            orderby h.Id descending
            select new { h, Status = d == null ? h.Status : d.Status })
            .Take(take).ToListAsync(ct);
        return entries.Select(e => new HistoryRow(e.h, e.Status)).ToList();
    }
}
