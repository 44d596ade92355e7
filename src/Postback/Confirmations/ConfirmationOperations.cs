using Microsoft.EntityFrameworkCore;
using Postback.Infrastructure;
using Postback.Notifications;
using Postback.Orders;
using Postback.Storage;

namespace Postback.Confirmations;

public enum ConfirmOutcome
{
    // A new confirmation, due now.
    Created,
    // Confirm on an order confirmed before: nothing changes (sending again is reconfirm).
    AlreadyConfirmed,
    // Reconfirm: a new round, due now.
    Reconfirmed,
    NoOrder,
    NotEnabled,
    // A worker is sending it right now; its answer is about to be recorded.
    InFlight,
    // The database kept failing in a way worth retrying (busy, deadlock, serialization,
    // connection lost); nothing was stored, and the caller may try again.
    Unavailable,
}

public sealed record ConfirmResult(ConfirmOutcome Outcome, OrderConfirmation? Confirmation, string? Reason);

/// What the confirmations API and the admin pages both do: save the settings, confirm and
/// reconfirm an order, and read a confirmation with its attempts and alert e-mails.
public static class ConfirmationOperations
{
    public static Task<ConfirmationSettings?> GetSettingsAsync(PostbackDb db, long organizationId, CancellationToken ct) =>
        db.ConfirmationSettings.AsNoTracking().FirstOrDefaultAsync(s => s.OrganizationId == organizationId, ct);

    /// Validates and saves the settings; nothing is written on errors.
    public static async Task<(ConfirmationSettings? Settings, ValidationErrors Errors)> SaveSettingsAsync(
        PostbackDb db, long organizationId, ConfirmationSettingsInput input, bool allowPrivateNetworks, DateTimeOffset now, CancellationToken ct)
    {
        var (valid, errors) = ConfirmationSettingsValidation.Validate(input, allowPrivateNetworks);
        if (valid is null)
        {
            return (null, errors);
        }
        var row = await db.ConfirmationSettings.FirstOrDefaultAsync(s => s.OrganizationId == organizationId, ct);
        if (row is null)
        {
            row = new ConfirmationSettings { OrganizationId = organizationId };
            db.ConfirmationSettings.Add(row);
        }
        row.Enabled = valid.Enabled;
        row.Url = valid.Url;
        row.AuthenticationToken = valid.AuthenticationToken;
        row.NotificationEmails = valid.NotificationEmails;
        row.UpdatedAt = now;
        await db.SaveChangesInTurnAsync(ct);
        return (row, errors);
    }

    // How many times confirm and reconfirm run when the database fails transiently.
    public const int MaxTries = 3;

    public static Task<ConfirmResult> ConfirmAsync(
        PostbackDb db, long organizationId, long orderId, DateTimeOffset now, ConfirmationSignal signal, CancellationToken ct) =>
        RetryTransientAsync(db, orderId, () => ConfirmOnceAsync(db, organizationId, orderId, now, signal, ct), ct);

    public static Task<ConfirmResult> ReconfirmAsync(
        PostbackDb db, long organizationId, long orderId, DateTimeOffset now, ConfirmationSignal signal, CancellationToken ct) =>
        RetryTransientAsync(db, orderId, () => ReconfirmOnceAsync(db, organizationId, orderId, now, signal, ct), ct);

    /// Runs a confirm or reconfirm, again (a bounded number of times) when the database fails in
    /// a way that may pass. Each run writes in one statement or one SaveChanges, so a failed run
    /// stored nothing; anything else it threw is thrown on, with nothing stored either.
    private static async Task<ConfirmResult> RetryTransientAsync(PostbackDb db, long orderId, Func<Task<ConfirmResult>> run, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await run();
            }
            catch (Exception e) when (DatabaseErrors.IsTransient(e) && !ct.IsCancellationRequested)
            {
                db.ChangeTracker.Clear();
                if (attempt >= MaxTries)
                {
                    return new(ConfirmOutcome.Unavailable, null,
                        $"the database is busy and order {orderId} could not be confirmed now (nothing was stored); try again shortly");
                }
                await Task.Delay(TimeSpan.FromMilliseconds(25 * attempt), ct);
            }
            catch
            {
                db.ChangeTracker.Clear();
                throw;
            }
        }
    }

    private static async Task<ConfirmResult> ConfirmOnceAsync(
        PostbackDb db, long organizationId, long orderId, DateTimeOffset now, ConfirmationSignal signal, CancellationToken ct)
    {
        if (await PreconditionsAsync(db, organizationId, orderId, ct) is { } refused)
        {
            return refused;
        }
        // Confirming is done once; sending again is what reconfirm is for.
        if (await FindAsync(db, organizationId, orderId, ct) is { } existing)
        {
            return new(ConfirmOutcome.AlreadyConfirmed, existing, null);
        }
        var created = await CreateAsync(db, organizationId, orderId, now, ct);
        signal.Notify();
        return new(ConfirmOutcome.Created, created, null);
    }

    private static async Task<ConfirmResult> ReconfirmOnceAsync(
        PostbackDb db, long organizationId, long orderId, DateTimeOffset now, ConfirmationSignal signal, CancellationToken ct)
    {
        if (await PreconditionsAsync(db, organizationId, orderId, ct) is { } refused)
        {
            return refused;
        }
        var existing = await FindAsync(db, organizationId, orderId, ct);
        if (existing is null)
        {
            // Never confirmed: reconfirming it is confirming it.
            var created = await CreateAsync(db, organizationId, orderId, now, ct);
            signal.Notify();
            return new(ConfirmOutcome.Created, created, null);
        }
        // One conditional statement: a worker sending this confirmation right now holds a lease,
        // and its answer is about to be recorded; the operator waits for it. A new round starts
        // clean: pending, with no message, error or status code from the round before (those
        // stay in that round's attempts and in the customer's history).
        var round = existing.Round;
        var changed = await db.WriteInTurnAsync(() => db.Confirmations
            .Where(c => c.Id == existing.Id && c.Round == round && (c.LeaseUntil == null || c.LeaseUntil < now))
            .ExecuteUpdateAsync(s => s
                .SetProperty(c => c.Round, round + 1)
                .SetProperty(c => c.Status, ConfirmationStatus.Pending)
                .SetProperty(c => c.Attempts, 0)
                .SetProperty(c => c.DueAt, now)
                .SetProperty(c => c.RequestedAt, now)
                .SetProperty(c => c.CompletedAt, (DateTimeOffset?)null)
                .SetProperty(c => c.Message, (string?)null)
                .SetProperty(c => c.Error, (string?)null)
                .SetProperty(c => c.LastStatusCode, (int?)null)
                .SetProperty(c => c.LastAttemptAt, (DateTimeOffset?)null)
                .SetProperty(c => c.LeaseOwner, (string?)null)
                .SetProperty(c => c.LeaseUntil, (DateTimeOffset?)null), ct), ct);
        if (changed == 0)
        {
            return new(ConfirmOutcome.InFlight, existing, $"the confirmation of order {orderId} is being sent right now; wait for its answer");
        }
        signal.Notify();
        // What the statement wrote, without reading it back: a read that failed now would run
        // the reconfirm again and start yet another round.
        existing.Round = round + 1;
        existing.Status = ConfirmationStatus.Pending;
        existing.Attempts = 0;
        existing.DueAt = now;
        existing.RequestedAt = now;
        existing.CompletedAt = null;
        existing.Message = null;
        existing.Error = null;
        existing.LastStatusCode = null;
        existing.LastAttemptAt = null;
        existing.LeaseOwner = null;
        existing.LeaseUntil = null;
        return new(ConfirmOutcome.Reconfirmed, existing, null);
    }

    public sealed record Detail(OrderConfirmation Confirmation, List<ConfirmationAttempt> Attempts, List<AlertView> Alerts);

    public static async Task<Detail?> GetDetailAsync(PostbackDb db, long organizationId, long orderId, CancellationToken ct)
    {
        var confirmation = await FindAsync(db, organizationId, orderId, ct);
        if (confirmation is null)
        {
            return null;
        }
        var attempts = await db.ConfirmationAttempts.AsNoTracking().Where(a => a.ConfirmationId == confirmation.Id).OrderBy(a => a.Id).ToListAsync(ct);
        var prefix = ConfirmationAlert.KeyPrefix(confirmation.Id);
        var alerts = await db.EmailOutbox.AsNoTracking()
            .Where(m => m.OrganizationId == organizationId && m.DedupKey.StartsWith(prefix))
            .OrderBy(m => m.Id)
            .Select(m => new AlertView(m.Recipient, m.Subject, m.Status, m.Attempts, m.LastError, m.CreatedAt, m.SentAt))
            .ToListAsync(ct);
        return new Detail(confirmation, attempts, alerts);
    }

    public static Task<OrderConfirmation?> FindAsync(PostbackDb db, long organizationId, long orderId, CancellationToken ct) =>
        db.Confirmations.AsNoTracking().FirstOrDefaultAsync(c => c.OrganizationId == organizationId && c.OrderId == orderId, ct);

    private static async Task<ConfirmResult?> PreconditionsAsync(PostbackDb db, long organizationId, long orderId, CancellationToken ct)
    {
        if (!await db.Orders.AnyAsync(o => o.OrganizationId == organizationId && o.OrderId == orderId, ct))
        {
            return new(ConfirmOutcome.NoOrder, null, $"There is no order {orderId}.");
        }
        var settings = await db.ConfirmationSettings.AsNoTracking().FirstOrDefaultAsync(s => s.OrganizationId == organizationId, ct);
        if (settings is not { Enabled: true, Url: not null })
        {
            return new(ConfirmOutcome.NotEnabled, null,
                $"the order confirmation webhook is not enabled; set it up with PUT /api/v1{ConfirmationsApi.SettingsPath}");
        }
        return null;
    }

    private static async Task<OrderConfirmation> CreateAsync(PostbackDb db, long organizationId, long orderId, DateTimeOffset now, CancellationToken ct)
    {
        var order = await db.Orders.AsNoTracking()
            .Where(o => o.OrganizationId == organizationId && o.OrderId == orderId)
            .Select(o => new { o.Id, o.CustomerId })
            .FirstAsync(ct);
        var confirmation = new OrderConfirmation
        {
            OrganizationId = organizationId,
            OrderKey = order.Id,
            OrderId = orderId,
            CustomerId = order.CustomerId,
            DueAt = now,
            RequestedAt = now,
        };
        db.Confirmations.Add(confirmation);
        try
        {
            await db.SaveChangesInTurnAsync(ct);
            return confirmation;
        }
        catch (DbUpdateException e) when (DatabaseErrors.IsUniqueViolation(e))
        {
            // Confirmed twice at the same moment: the other request made it; this is the same.
            db.ChangeTracker.Clear();
            return await FindAsync(db, organizationId, orderId, ct) ?? throw new InvalidOperationException("The confirmation vanished.");
        }
    }
}
