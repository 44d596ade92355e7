using System.Globalization;
using System.Security.Claims;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Postback.Infrastructure;
using Postback.Notifications;
using Postback.Organizations;
using Postback.Outbound;
using Postback.Storage;

namespace Postback.Confirmations;

// The token is the organization's own credential for its own endpoint, and this API is
// reached with the organization's API key: it is shown here as set (like a profile's header
// mappings are). Attempt logs mask it.
public sealed record ConfirmationSettingsView(bool Enabled, string? Url, string? AuthenticationToken, IReadOnlyList<string> NotificationEmails, DateTimeOffset? UpdatedAt)
{
    public static ConfirmationSettingsView From(ConfirmationSettings? s) => s is null
        ? new(false, null, null, [], null)
        : new(s.Enabled, s.Url, s.AuthenticationToken, s.NotificationEmails, s.UpdatedAt);
}

/// An order's confirmation state as the order shows it: pending, confirmed or failed, the
/// receiver's message, why it failed, and when (statusAt).
public sealed record ConfirmationView(
    long OrderId, string Status, string? Message, string? Error, DateTimeOffset StatusAt, int Round, int Attempts,
    DateTimeOffset? NextAttemptAt, int? LastStatusCode, DateTimeOffset RequestedAt, DateTimeOffset? CompletedAt, string Link)
{
    public static ConfirmationView From(OrderConfirmation c) => new(
        c.OrderId, c.Status, c.Message, c.Error, c.CompletedAt ?? c.LastAttemptAt ?? c.RequestedAt, c.Round, c.Attempts,
        c.Status == ConfirmationStatus.Pending ? c.DueAt : null, c.LastStatusCode, c.RequestedAt, c.CompletedAt,
        LinkFor(c.OrderId));

    public static string LinkFor(long orderId) => string.Create(CultureInfo.InvariantCulture, $"/api/v1/orders/{orderId}/confirmation");
}

public sealed record ConfirmationAttemptView(
    int Round, int Number, DateTimeOffset StartedAt, double DurationMs, bool Succeeded, JsonObject Request, JsonObject? Response, string? Error);

public sealed record AlertView(string Recipient, string Subject, string Status, int Attempts, string? LastError, DateTimeOffset CreatedAt, DateTimeOffset? SentAt);

public sealed record ConfirmationDetail(ConfirmationView Confirmation, IReadOnlyList<ConfirmationAttemptView> Attempts, IReadOnlyList<AlertView> Alerts);

internal static class ConfirmationsApi
{
    public const string SettingsPath = "/settings/order-confirmation-webhook";

    public static IServiceCollection AddConfirmations(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ConfirmationOptions>().Bind(configuration.GetSection(ConfirmationOptions.Section));
        services.AddSingleton<ConfirmationSignal>();
        services.AddHostedService<ConfirmationWorker>();
        // Its alerts go out through the e-mail outbox.
        return services.AddEmailOutbox(configuration);
    }

    public static RouteGroupBuilder MapConfirmations(this RouteGroupBuilder api)
    {
        var settings = api.MapGroup(SettingsPath).WithTags("Order confirmation");
        settings.MapGet("/", GetSettings).WithSummary("The order confirmation webhook: enabled, URL, token, error-notification addresses.");
        settings.MapPut("/", PutSettings).WithSummary("Replace the order confirmation webhook settings.");
        var orders = api.MapGroup("/orders/{orderId:long}").WithTags("Order confirmation");
        orders.MapPost("/confirm", Confirm).WithSummary("Confirm the order: POST {companyId, orderId} to the webhook (in the background, retried).");
        orders.MapPost("/reconfirm", Reconfirm).WithSummary("Send the confirmation again, once the external system is fixed.");
        orders.MapGet("/confirmation", Get).WithSummary("The order's confirmation state, every request sent and answer received, and its alert e-mails.");
        return api;
    }

    private static async Task<Ok<ConfirmationSettingsView>> GetSettings(ClaimsPrincipal user, PostbackDb db, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        var row = await db.ConfirmationSettings.AsNoTracking().FirstOrDefaultAsync(s => s.OrganizationId == organizationId, ct);
        return TypedResults.Ok(ConfirmationSettingsView.From(row));
    }

    private static async Task<Results<Ok<ConfirmationSettingsView>, ValidationProblem>> PutSettings(
        ConfirmationSettingsInput input, ClaimsPrincipal user, PostbackDb db, TimeProvider time, IOptions<PostbackOptions> options, CancellationToken ct)
    {
        var (valid, errors) = ConfirmationSettingsValidation.Validate(input, options.Value.Outbound.AllowPrivateNetworks);
        if (valid is null)
        {
            return Problems.Validation(errors);
        }
        var organizationId = user.OrganizationId();
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
        row.UpdatedAt = time.GetUtcNow();
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(ConfirmationSettingsView.From(row));
    }

    private static async Task<Results<Accepted<ConfirmationView>, Ok<ConfirmationView>, ProblemHttpResult>> Confirm(
        long orderId, ClaimsPrincipal user, PostbackDb db, TimeProvider time, ConfirmationSignal signal, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        if (await PreconditionsAsync(db, organizationId, orderId, ct) is { } problem)
        {
            return problem;
        }
        // Confirming is done once; sending again is what reconfirm is for.
        if (await FindAsync(db, organizationId, orderId, ct) is { } existing)
        {
            return TypedResults.Ok(ConfirmationView.From(existing));
        }
        var created = await CreateAsync(db, organizationId, orderId, time.GetUtcNow(), ct);
        signal.Notify();
        return TypedResults.Accepted(ConfirmationView.LinkFor(orderId), ConfirmationView.From(created));
    }

    private static async Task<Results<Accepted<ConfirmationView>, ProblemHttpResult>> Reconfirm(
        long orderId, ClaimsPrincipal user, PostbackDb db, TimeProvider time, ConfirmationSignal signal, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        if (await PreconditionsAsync(db, organizationId, orderId, ct) is { } problem)
        {
            return problem;
        }
        var now = time.GetUtcNow();
        var existing = await FindAsync(db, organizationId, orderId, ct);
        if (existing is null)
        {
            // Never confirmed: reconfirming it is confirming it.
            var created = await CreateAsync(db, organizationId, orderId, now, ct);
            signal.Notify();
            return TypedResults.Accepted(ConfirmationView.LinkFor(orderId), ConfirmationView.From(created));
        }
        // One conditional statement: a worker sending this confirmation right now holds a lease,
        // and its answer is about to be recorded; the operator waits for it.
        var round = existing.Round;
        var changed = await db.Confirmations
            .Where(c => c.Id == existing.Id && c.Round == round && (c.LeaseUntil == null || c.LeaseUntil < now))
            .ExecuteUpdateAsync(s => s
                .SetProperty(c => c.Round, round + 1)
                .SetProperty(c => c.Status, ConfirmationStatus.Pending)
                .SetProperty(c => c.Attempts, 0)
                .SetProperty(c => c.DueAt, now)
                .SetProperty(c => c.RequestedAt, now)
                .SetProperty(c => c.CompletedAt, (DateTimeOffset?)null)
                .SetProperty(c => c.LeaseOwner, (string?)null)
                .SetProperty(c => c.LeaseUntil, (DateTimeOffset?)null), ct);
        if (changed == 0)
        {
            return Problems.Conflict("orderId", $"the confirmation of order {orderId} is being sent right now; wait for its answer");
        }
        signal.Notify();
        var updated = await FindAsync(db, organizationId, orderId, ct);
        return TypedResults.Accepted(ConfirmationView.LinkFor(orderId), ConfirmationView.From(updated!));
    }

    private static async Task<Results<Ok<ConfirmationDetail>, ProblemHttpResult>> Get(long orderId, ClaimsPrincipal user, PostbackDb db, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        var confirmation = await FindAsync(db, organizationId, orderId, ct);
        if (confirmation is null)
        {
            return Problems.NotFound($"Order {orderId} has not been confirmed.");
        }
        var attempts = await db.ConfirmationAttempts.AsNoTracking().Where(a => a.ConfirmationId == confirmation.Id).OrderBy(a => a.Id).ToListAsync(ct);
        var prefix = ConfirmationAlert.KeyPrefix(confirmation.Id);
        var alerts = await db.EmailOutbox.AsNoTracking()
            .Where(m => m.OrganizationId == organizationId && m.DedupKey.StartsWith(prefix))
            .OrderBy(m => m.Id)
            .Select(m => new AlertView(m.Recipient, m.Subject, m.Status, m.Attempts, m.LastError, m.CreatedAt, m.SentAt))
            .ToListAsync(ct);
        return TypedResults.Ok(new ConfirmationDetail(ConfirmationView.From(confirmation), attempts.Select(ToView).ToList(), alerts));
    }

    /// For GET /orders/{orderId}: the order's confirmation state, or null if never confirmed.
    public static async Task<ConfirmationView?> ViewForOrderAsync(PostbackDb db, long organizationId, long orderId, CancellationToken ct) =>
        await FindAsync(db, organizationId, orderId, ct) is { } c ? ConfirmationView.From(c) : null;

    private static ConfirmationAttemptView ToView(ConfirmationAttempt a) => new(
        a.Round, a.Number, a.StartedAt, a.DurationMs, a.Succeeded,
        new JsonObject
        {
            ["method"] = a.RequestMethod,
            ["url"] = a.RequestUrl,
            ["headers"] = JsonNode.Parse(a.RequestHeaders),
            ["body"] = a.RequestBody,
        },
        a.ResponseStatus is null ? null : new JsonObject
        {
            ["status"] = a.ResponseStatus,
            ["headers"] = a.ResponseHeaders is null ? null : JsonNode.Parse(a.ResponseHeaders),
            ["bodyExcerpt"] = a.ResponseBody,
        },
        a.Error);

    private static async Task<ProblemHttpResult?> PreconditionsAsync(PostbackDb db, long organizationId, long orderId, CancellationToken ct)
    {
        if (!await db.Orders.AnyAsync(o => o.OrganizationId == organizationId && o.OrderId == orderId, ct))
        {
            return Problems.NotFound($"There is no order {orderId}.");
        }
        var settings = await db.ConfirmationSettings.AsNoTracking().FirstOrDefaultAsync(s => s.OrganizationId == organizationId, ct);
        if (settings is not { Enabled: true, Url: not null })
        {
            return Problems.Conflict("enabled", $"the order confirmation webhook is not enabled; set it up with PUT /api/v1{SettingsPath}");
        }
        return null;
    }

    private static Task<OrderConfirmation?> FindAsync(PostbackDb db, long organizationId, long orderId, CancellationToken ct) =>
        db.Confirmations.AsNoTracking().FirstOrDefaultAsync(c => c.OrganizationId == organizationId && c.OrderId == orderId, ct);

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
            await db.SaveChangesAsync(ct);
            return confirmation;
        }
        catch (DbUpdateException)
        {
            // Confirmed twice at the same moment: the other request made it; this is the same.
            db.ChangeTracker.Clear();
            return await FindAsync(db, organizationId, orderId, ct) ?? throw new InvalidOperationException("The confirmation vanished.");
        }
    }
}
