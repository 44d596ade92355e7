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
        services.AddSettings<ConfirmationOptions>(configuration, ConfirmationOptions.Section);
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

    private static async Task<Ok<ConfirmationSettingsView>> GetSettings(ClaimsPrincipal user, PostbackDb db, CancellationToken ct) =>
        TypedResults.Ok(ConfirmationSettingsView.From(await ConfirmationOperations.GetSettingsAsync(db, user.OrganizationId(), ct)));

    private static async Task<Results<Ok<ConfirmationSettingsView>, ValidationProblem>> PutSettings(
        ConfirmationSettingsInput input, ClaimsPrincipal user, PostbackDb db, TimeProvider time, IOptions<PostbackOptions> options, CancellationToken ct)
    {
        var (row, errors) = await ConfirmationOperations.SaveSettingsAsync(
            db, user.OrganizationId(), input, options.Value.Outbound.AllowPrivateNetworks, time.GetUtcNow(), ct);
        return row is null ? Problems.Validation(errors) : TypedResults.Ok(ConfirmationSettingsView.From(row));
    }

    private static async Task<Results<Accepted<ConfirmationView>, Ok<ConfirmationView>, ProblemHttpResult>> Confirm(
        long orderId, ClaimsPrincipal user, PostbackDb db, TimeProvider time, ConfirmationSignal signal, CancellationToken ct)
    {
        var result = await ConfirmationOperations.ConfirmAsync(db, user.OrganizationId(), orderId, time.GetUtcNow(), signal, ct);
        return result.Outcome switch
        {
            ConfirmOutcome.AlreadyConfirmed => TypedResults.Ok(ConfirmationView.From(result.Confirmation!)),
            ConfirmOutcome.Created => TypedResults.Accepted(ConfirmationView.LinkFor(orderId), ConfirmationView.From(result.Confirmation!)),
            _ => Refused(result),
        };
    }

    private static async Task<Results<Accepted<ConfirmationView>, ProblemHttpResult>> Reconfirm(
        long orderId, ClaimsPrincipal user, PostbackDb db, TimeProvider time, ConfirmationSignal signal, CancellationToken ct)
    {
        var result = await ConfirmationOperations.ReconfirmAsync(db, user.OrganizationId(), orderId, time.GetUtcNow(), signal, ct);
        return result.Outcome is ConfirmOutcome.Created or ConfirmOutcome.Reconfirmed
            ? TypedResults.Accepted(ConfirmationView.LinkFor(orderId), ConfirmationView.From(result.Confirmation!))
            : Refused(result);
    }

    private static ProblemHttpResult Refused(ConfirmResult result) => result.Outcome switch
    {
        ConfirmOutcome.NoOrder => Problems.NotFound(result.Reason!),
        ConfirmOutcome.NotEnabled => Problems.Conflict("enabled", result.Reason!),
        ConfirmOutcome.Unavailable => TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Try again.", detail: result.Reason),
        _ => Problems.Conflict("orderId", result.Reason!),
    };

    private static async Task<Results<Ok<ConfirmationDetail>, ProblemHttpResult>> Get(long orderId, ClaimsPrincipal user, PostbackDb db, CancellationToken ct)
    {
        var detail = await ConfirmationOperations.GetDetailAsync(db, user.OrganizationId(), orderId, ct);
        if (detail is null)
        {
            return Problems.NotFound($"Order {orderId} has not been confirmed.");
        }
        return TypedResults.Ok(new ConfirmationDetail(ConfirmationView.From(detail.Confirmation), detail.Attempts.Select(ToView).ToList(), detail.Alerts));
    }

    /// For GET /orders/{orderId}: the order's confirmation state, or null if never confirmed.
    public static async Task<ConfirmationView?> ViewForOrderAsync(PostbackDb db, long organizationId, long orderId, CancellationToken ct) =>
        await ConfirmationOperations.FindAsync(db, organizationId, orderId, ct) is { } c ? ConfirmationView.From(c) : null;

    private static ConfirmationAttemptView ToView(ConfirmationAttempt a) =>
        new(a.Round, a.Number, a.StartedAt, a.DurationMs, a.Succeeded, a.RequestJson(), a.ResponseJson(), a.Error);
}
