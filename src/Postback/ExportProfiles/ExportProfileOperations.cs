using Microsoft.EntityFrameworkCore;
using Postback.Catalog;
using Postback.Deliveries;
using Postback.Infrastructure;
using Postback.Orders;
using Postback.Outbound;
using Postback.Storage;

namespace Postback.ExportProfiles;

/// The outcome of rendering a profile for one order: the request, or why there is none
/// (validation errors, or the profile or order is not found).
public sealed record RenderOutcome(RenderedRequest? Request, string? CustomerType, RoutingView? Routing, ValidationErrors? Errors, string? NotFound, string? Csv = null);

/// What the API and the admin pages both do with profiles: validate against the catalog,
/// save, delete, render for an order. One implementation, so the two cannot disagree.
public static class ExportProfileOperations
{
    public static Task<ExportProfile?> FindAsync(PostbackDb db, long organizationId, long id, CancellationToken ct) =>
        db.ExportProfiles.FirstOrDefaultAsync(p => p.OrganizationId == organizationId && p.Id == id, ct);

    public static string NotFoundMessage(long id) => $"There is no export profile {id}.";

    public static ExportProfileInput ToInput(ExportProfile p) =>
        new(p.Name, p.Type, p.PostbackUrl, p.ExportDelayMinutes, p.Enabled, p.Mappings, p.Routes, p.RetryCapMinutes, p.GiveUpAfterHours, p.SigningSecret,
            p.Ordering, p.Coalesce, p.Captures, FileExports.FileSettingsInputs.From(p.File));

    public static async Task<(ValidProfile?, ValidationErrors)> ValidateAsync(
        ExportProfileInput input, long organizationId, PostbackDb db, PostbackOptions options, CancellationToken ct,
        FileExports.FileSettings? existingFile = null)
    {
        var campaignIds = (input.Routes ?? []).Where(r => r is not null).SelectMany(r => r.CampaignIds ?? []).Where(c => c is not null).Select(c => c.Trim()).Distinct().ToList();
        var productIds = (input.Routes ?? []).Where(r => r is not null).SelectMany(r => r.ProductIds ?? []).Where(p => p is not null).Select(p => p.Trim()).Distinct().ToList();
        var knownCampaigns = campaignIds.Count == 0 ? [] : (await db.Campaigns.AsNoTracking()
            .Where(c => c.OrganizationId == organizationId && campaignIds.Contains(c.CampaignId)).Select(c => c.CampaignId).ToListAsync(ct)).ToHashSet();
        var knownProducts = productIds.Count == 0 ? [] : (await db.Products.AsNoTracking()
            .Where(p => p.OrganizationId == organizationId && productIds.Contains(p.ProductId)).Select(p => p.ProductId).ToListAsync(ct)).ToHashSet();
        return ProfileValidation.Validate(input, knownCampaigns.Contains, knownProducts.Contains, options.Outbound.AllowPrivateNetworks,
            new FileExports.FileValidationContext(options.Outbound.AllowPrivateNetworks, options.FileExports.FolderRoot, existingFile));
    }

    /// A test-send goes out as a delivery would: with a webhook-id (test_…, never a delivery's)
    /// and, when the profile signs, a Standard Webhooks signature a receiver can check.
    public static RenderedRequest ForTestSend(RenderedRequest request, ExportProfile profile, DateTimeOffset now)
    {
        var id = "test_" + Guid.CreateVersion7().ToString("N");
        request = request with { Headers = [.. request.Headers, new(Deliveries.DeliveryWorker.WebhookIdHeader, id)] };
        return profile.SigningSecret is { } secret ? Outbound.WebhookSignature.Add(request, secret, id, now) : request;
    }

    public static void Apply(ExportProfile profile, ValidProfile valid, DateTimeOffset now)
    {
        profile.Name = valid.Name;
        profile.Type = valid.Type;
        profile.PostbackUrl = valid.PostbackUrl;
        profile.ExportDelayMinutes = valid.ExportDelayMinutes;
        profile.Enabled = valid.Enabled;
        profile.Mappings = valid.Mappings;
        profile.Routes = valid.Routes;
        profile.RetryCapMinutes = valid.RetryCapMinutes;
        profile.GiveUpAfterHours = valid.GiveUpAfterHours;
        profile.SigningSecret = valid.SigningSecret;
        profile.Ordering = valid.Ordering;
        profile.Coalesce = valid.Coalesce;
        profile.Captures = valid.Captures ?? [];
        profile.File = valid.File;
        profile.UpdatedAt = now;
    }

    /// Validates and stores a new profile; nothing is stored when there are errors.
    public static async Task<(ExportProfile? Profile, ValidationErrors Errors)> CreateAsync(
        ExportProfileInput input, long organizationId, PostbackDb db, DateTimeOffset now, PostbackOptions options, CancellationToken ct)
    {
        var (valid, errors) = await ValidateAsync(input, organizationId, db, options, ct);
        if (valid is null)
        {
            return (null, errors);
        }
        var profile = new ExportProfile { OrganizationId = organizationId, Name = valid.Name, PostbackUrl = valid.PostbackUrl, CreatedAt = now };
        Apply(profile, valid, now);
        db.ExportProfiles.Add(profile);
        await db.SaveChangesAsync(ct);
        return (profile, errors);
    }

    /// Validates and replaces a tracked profile; returns the errors (none when saved).
    public static async Task<ValidationErrors> ReplaceAsync(
        ExportProfile profile, ExportProfileInput input, PostbackDb db, DateTimeOffset now, PostbackOptions options, CancellationToken ct)
    {
        var (valid, errors) = await ValidateAsync(input, profile.OrganizationId, db, options, ct, profile.File);
        if (valid is null)
        {
            return errors;
        }
        var endpoint = Endpoints.Of(valid.PostbackUrl);
        Apply(profile, valid, now);
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        await db.SaveChangesAsync(ct);
        // Pending deliveries go to the new URL; endpoint health follows them there.
        await db.Deliveries.Where(d => d.ProfileId == profile.Id && d.Status == DeliveryStatus.Pending && d.Endpoint != endpoint)
            .ExecuteUpdateAsync(s => s.SetProperty(d => d.Endpoint, endpoint), ct);
        await transaction.CommitAsync(ct);
        return errors;
    }

    public static async Task DeleteAsync(ExportProfile profile, PostbackDb db, DateTimeOffset now, CancellationToken ct)
    {
        // Its deliveries stay, with their attempts, as the record of what was sent; the
        // pending ones will not be sent any more.
        var id = profile.Id;
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        db.ExportProfiles.Remove(profile);
        await db.SaveChangesAsync(ct);
        var cancelled = await db.Deliveries.Where(d => d.ProfileId == id && d.Status == DeliveryStatus.Pending)
            .ExecuteUpdateAsync(s => s
                .SetProperty(d => d.Status, DeliveryStatus.Cancelled)
                .SetProperty(d => d.CompletedAt, now)
                .SetProperty(d => d.LastError, "the export profile was deleted"), ct);
        await transaction.CommitAsync(ct);
        Infrastructure.PostbackMetrics.DeliveriesCancelled(cancelled);
    }

    /// The request the profile sends for an order (stored, by id, or given inline), with the
    /// routing decision for the event type asked for (or the profile's first routed type).
    public static async Task<RenderOutcome> RenderAsync(long id, RenderInput input, long organizationId, PostbackDb db, CancellationToken ct)
    {
        var profile = await FindAsync(db, organizationId, id, ct);
        if (profile is null)
        {
            return new RenderOutcome(null, null, null, null, NotFoundMessage(id));
        }

        OrderData order;
        if (input.Order is { ValueKind: not System.Text.Json.JsonValueKind.Null and not System.Text.Json.JsonValueKind.Undefined } inline)
        {
            if (input.OrderId is not null)
            {
                return Invalid("orderId", "give orderId or order, not both");
            }
            var parsed = OrderParser.Parse(inline);
            if (parsed.Order is null)
            {
                var errors = new ValidationErrors();
                errors.AddRange(parsed.Errors, "order");
                return new RenderOutcome(null, null, null, errors, null);
            }
            order = parsed.Order;
        }
        else if (input.OrderId is { } orderId)
        {
            var row = await db.Orders.AsNoTracking().FirstOrDefaultAsync(o => o.OrganizationId == organizationId && o.OrderId == orderId, ct);
            if (row is null)
            {
                return new RenderOutcome(null, null, null, null, $"There is no order {orderId}.");
            }
            order = OrderJson.Deserialize(row.Data);
        }
        else
        {
            return Invalid("orderId", "give the orderId of a stored order, or an order object");
        }

        var eventType = input.CustomerType?.Trim() ?? profile.Routes.FirstOrDefault()?.CustomerTypes.FirstOrDefault() ?? CustomerTypes.NewSale;
        if (!CustomerTypes.IsKnown(eventType))
        {
            return Invalid("customerType", $"'{eventType}' is not a customer type; use one of {CustomerTypes.ListForErrors}");
        }

        var recurring = await db.Products.AsNoTracking()
            .Where(p => p.OrganizationId == organizationId && p.Recurring)
            .Select(p => p.ProductId).ToListAsync(ct);
        var fired = RouteMatcher.Match(profile.Routes, eventType, RoutingFacts.From(order, recurring.Contains));
        var explanation = fired is not null
            ? $"A {eventType} event for this order fires this profile as {fired}."
            : order.IsTestCard
                ? "Test card orders never export."
                : profile.Routes.Count == 0
                    ? "The profile has no routes, so it exports nothing."
                    : $"No route matches a {eventType} event for this order (customer type, campaign or product).";
        var campaignName = order.CampaignId is null ? null : await db.Campaigns.AsNoTracking()
            .Where(c => c.OrganizationId == organizationId && c.CampaignId == order.CampaignId)
            .Select(c => c.Name).FirstOrDefaultAsync(ct);
        var customerType = fired ?? eventType;
        var request = RequestRenderer.Render(profile.PostbackUrl, profile.Mappings, order, new RenderContext(customerType, campaignName));
        // A file profile's preview is the order's line of the CSV, under the header row.
        var csv = profile is { Type: ExportTypes.File, File: { } file }
            ? FileExports.CsvFile.Utf8.GetString(FileExports.CsvFile.Render(
                profile.Mappings, [new FileExports.FileRow(order, new RenderContext(customerType, campaignName))], header: true, file.Delimiter))
            : null;
        return new RenderOutcome(request, customerType, new RoutingView(eventType, fired is not null, fired, explanation), null, null, csv);

        static RenderOutcome Invalid(string field, string reason)
        {
            var errors = new ValidationErrors();
            errors.Add(field, reason);
            return new RenderOutcome(null, null, null, errors, null);
        }
    }
}
