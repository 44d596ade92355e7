using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Postback.Deliveries;
using Postback.Infrastructure;
using Postback.Orders;
using Postback.Organizations;
using Postback.Outbound;
using Postback.Storage;

namespace Postback.ExportProfiles;

public sealed record ExportProfileView(
    long Id, string Name, string Type, string PostbackUrl, int ExportDelayMinutes, bool Enabled,
    IReadOnlyList<ExportMapping> Mappings, IReadOnlyList<ExportRoute> Routes, int RetryCapMinutes, int? GiveUpAfterHours,
    DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt)
{
    public static ExportProfileView From(ExportProfile p) =>
        new(p.Id, p.Name, p.Type, p.PostbackUrl, p.ExportDelayMinutes, p.Enabled, p.Mappings, p.Routes, p.RetryCapMinutes, p.GiveUpAfterHours, p.CreatedAt, p.UpdatedAt);
}

/// Which order to render: a stored one by id, or one given inline; and as which event type.
public sealed record RenderInput(long? OrderId, JsonElement? Order, string? CustomerType);

public sealed record RequestView(string Method, string Url, IReadOnlyList<KeyValuePair<string, string>> Headers, string? Body, string Raw)
{
    public static RequestView From(RenderedRequest r) => new(r.Method, r.Url, r.Headers, r.Body, OutboundSender.ToRawHttp(r));
}

public sealed record RoutingView(string EventType, bool Fires, string? FiredCustomerType, string Explanation);

public sealed record PreviewView(string CustomerType, RoutingView Routing, RequestView Request);

public sealed record TestSendView(RequestView Request, bool Succeeded, OutboundResponse? Response, double DurationMs, string? Error);

public sealed record ImportMappingView(IReadOnlyList<ExportMapping> Mappings, ExportProfileView? Profile);

internal static class ExportProfilesApi
{
    public static RouteGroupBuilder MapExportProfiles(this RouteGroupBuilder api)
    {
        var group = api.MapGroup("/export-profiles").WithTags("Export profiles");
        group.MapGet("/", List);
        group.MapPost("/", Create).WithSummary("Create an export profile: URL, field mappings, routing, delay.");
        group.MapGet("/{id:long}", Get);
        group.MapPut("/{id:long}", Replace);
        group.MapDelete("/{id:long}", Delete);
        group.MapPost("/{id:long}/preview", Preview).WithSummary("The exact request the profile would send for an order.");
        group.MapPost("/{id:long}/test", TestSend).WithSummary("Send the profile's request for an order once, now, and show the answer.");
        group.MapPost("/import-mapping", ImportMapping)
            .WithSummary("Convert Konnektive field-mapping JSON into mappings; with ?profileId= also replace that profile's mappings.");
        return api;
    }

    private static async Task<Ok<List<ExportProfileView>>> List(ClaimsPrincipal user, PostbackDb db, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        var profiles = await db.ExportProfiles.AsNoTracking().Where(p => p.OrganizationId == organizationId).OrderBy(p => p.Id).ToListAsync(ct);
        return TypedResults.Ok(profiles.Select(ExportProfileView.From).ToList());
    }

    private static async Task<Results<Ok<ExportProfileView>, ProblemHttpResult>> Get(long id, ClaimsPrincipal user, PostbackDb db, CancellationToken ct)
    {
        var profile = await Find(db, user.OrganizationId(), id, ct);
        return profile is null ? NotFound(id) : TypedResults.Ok(ExportProfileView.From(profile));
    }

    private static async Task<Results<Created<ExportProfileView>, ValidationProblem>> Create(
        ExportProfileInput input, ClaimsPrincipal user, PostbackDb db, TimeProvider time, IOptions<PostbackOptions> options, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        var (valid, errors) = await ValidateAsync(input, organizationId, db, options.Value, ct);
        if (valid is null)
        {
            return Problems.Validation(errors);
        }
        var now = time.GetUtcNow();
        var profile = new ExportProfile { OrganizationId = organizationId, Name = valid.Name, PostbackUrl = valid.PostbackUrl, CreatedAt = now };
        Apply(profile, valid, now);
        db.ExportProfiles.Add(profile);
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/v1/export-profiles/{profile.Id}", ExportProfileView.From(profile));
    }

    private static async Task<Results<Ok<ExportProfileView>, ValidationProblem, ProblemHttpResult>> Replace(
        long id, ExportProfileInput input, ClaimsPrincipal user, PostbackDb db, TimeProvider time, IOptions<PostbackOptions> options, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        var profile = await Find(db, organizationId, id, ct);
        if (profile is null)
        {
            return NotFound(id);
        }
        var (valid, errors) = await ValidateAsync(input, organizationId, db, options.Value, ct);
        if (valid is null)
        {
            return Problems.Validation(errors);
        }
        var endpoint = Endpoints.Of(valid.PostbackUrl);
        Apply(profile, valid, time.GetUtcNow());
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        await db.SaveChangesAsync(ct);
        // Pending deliveries go to the new URL; endpoint health follows them there.
        await db.Deliveries.Where(d => d.ProfileId == id && d.Status == DeliveryStatus.Pending && d.Endpoint != endpoint)
            .ExecuteUpdateAsync(s => s.SetProperty(d => d.Endpoint, endpoint), ct);
        await transaction.CommitAsync(ct);
        return TypedResults.Ok(ExportProfileView.From(profile));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> Delete(long id, ClaimsPrincipal user, PostbackDb db, TimeProvider time, CancellationToken ct)
    {
        var profile = await Find(db, user.OrganizationId(), id, ct);
        if (profile is null)
        {
            return NotFound(id);
        }
        // Its deliveries stay, with their attempts, as the record of what was sent; the
        // pending ones will not be sent any more.
        var now = time.GetUtcNow();
        await using var transaction = await db.Database.BeginTransactionAsync(ct);
        db.ExportProfiles.Remove(profile);
        await db.SaveChangesAsync(ct);
        await db.Deliveries.Where(d => d.ProfileId == id && d.Status == DeliveryStatus.Pending)
            .ExecuteUpdateAsync(s => s
                .SetProperty(d => d.Status, DeliveryStatus.Cancelled)
                .SetProperty(d => d.CompletedAt, now)
                .SetProperty(d => d.LastError, "the export profile was deleted"), ct);
        await transaction.CommitAsync(ct);
        return TypedResults.NoContent();
    }

    private static async Task<Results<Ok<PreviewView>, ValidationProblem, ProblemHttpResult>> Preview(
        long id, RenderInput input, ClaimsPrincipal user, PostbackDb db, CancellationToken ct)
    {
        var rendered = await RenderAsync(id, input, user.OrganizationId(), db, ct);
        if (rendered.Problem is not null)
        {
            return rendered.Problem;
        }
        if (rendered.Errors is not null)
        {
            return Problems.Validation(rendered.Errors);
        }
        return TypedResults.Ok(new PreviewView(rendered.CustomerType!, rendered.Routing!, RequestView.From(rendered.Request!)));
    }

    private static async Task<Results<Ok<TestSendView>, ValidationProblem, ProblemHttpResult>> TestSend(
        long id, RenderInput input, ClaimsPrincipal user, PostbackDb db, OutboundSender sender, CancellationToken ct)
    {
        var rendered = await RenderAsync(id, input, user.OrganizationId(), db, ct);
        if (rendered.Problem is not null)
        {
            return rendered.Problem;
        }
        if (rendered.Errors is not null)
        {
            return Problems.Validation(rendered.Errors);
        }
        var result = await sender.SendAsync(rendered.Request!, ct);
        return TypedResults.Ok(new TestSendView(RequestView.From(rendered.Request!), result.Succeeded, result.Response, Math.Round(result.DurationMs, 2), result.Error));
    }

    private static async Task<Results<Ok<ImportMappingView>, ValidationProblem, ProblemHttpResult>> ImportMapping(
        JsonElement body, long? profileId, ClaimsPrincipal user, PostbackDb db, TimeProvider time, IOptions<PostbackOptions> options, CancellationToken ct)
    {
        var (mappings, errors) = KonnektiveMapping.Import(body);
        if (errors.Any)
        {
            return Problems.Validation(errors);
        }
        if (profileId is null)
        {
            // Validate the mappings on their own: a stand-in profile with a harmless URL.
            var (_, mappingErrors) = ProfileValidation.Validate(
                new ExportProfileInput("import", null, "https://example.com/", 0, true, mappings, []), _ => true, _ => true, true);
            return mappingErrors.Any ? Problems.Validation(Rename(mappingErrors)) : TypedResults.Ok(new ImportMappingView(mappings, null));
        }

        var organizationId = user.OrganizationId();
        var profile = await Find(db, organizationId, profileId.Value, ct);
        if (profile is null)
        {
            return NotFound(profileId.Value);
        }
        var input = new ExportProfileInput(
            profile.Name, profile.Type, profile.PostbackUrl, profile.ExportDelayMinutes, profile.Enabled, mappings, profile.Routes,
            profile.RetryCapMinutes, profile.GiveUpAfterHours);
        var (valid, validationErrors) = await ValidateAsync(input, organizationId, db, options.Value, ct);
        if (valid is null)
        {
            return Problems.Validation(Rename(validationErrors));
        }
        Apply(profile, valid, time.GetUtcNow());
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(new ImportMappingView(valid.Mappings, ExportProfileView.From(profile)));

        // Errors name the Konnektive key the operator pasted, not our list index.
        ValidationErrors Rename(ValidationErrors e)
        {
            var renamed = new ValidationErrors();
            foreach (var (field, reasons) in e.ToDictionary())
            {
                var key = field;
                if (field.StartsWith("mappings[", StringComparison.Ordinal))
                {
                    var end = field.IndexOf(']');
                    var index = int.Parse(field[9..end], System.Globalization.CultureInfo.InvariantCulture);
                    key = $"mapping.{mappings[index].ExportName}";
                }
                foreach (var reason in reasons)
                {
                    renamed.Add(key, reason);
                }
            }
            return renamed;
        }
    }

    private sealed record Rendered(RenderedRequest? Request, string? CustomerType, RoutingView? Routing, ValidationErrors? Errors, ProblemHttpResult? Problem);

    private static async Task<Rendered> RenderAsync(long id, RenderInput input, long organizationId, PostbackDb db, CancellationToken ct)
    {
        var profile = await Find(db, organizationId, id, ct);
        if (profile is null)
        {
            return new Rendered(null, null, null, null, NotFound(id));
        }

        OrderData order;
        if (input.Order is { ValueKind: not JsonValueKind.Null and not JsonValueKind.Undefined } inline)
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
                return new Rendered(null, null, null, errors, null);
            }
            order = parsed.Order;
        }
        else if (input.OrderId is { } orderId)
        {
            var row = await db.Orders.AsNoTracking().FirstOrDefaultAsync(o => o.OrganizationId == organizationId && o.OrderId == orderId, ct);
            if (row is null)
            {
                return new Rendered(null, null, null, null, Problems.NotFound($"There is no order {orderId}."));
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
        return new Rendered(request, customerType, new RoutingView(eventType, fired is not null, fired, explanation), null, null);

        static Rendered Invalid(string field, string reason)
        {
            var errors = new ValidationErrors();
            errors.Add(field, reason);
            return new Rendered(null, null, null, errors, null);
        }
    }

    private static async Task<(ValidProfile?, ValidationErrors)> ValidateAsync(
        ExportProfileInput input, long organizationId, PostbackDb db, PostbackOptions options, CancellationToken ct)
    {
        var campaignIds = (input.Routes ?? []).Where(r => r is not null).SelectMany(r => r.CampaignIds ?? []).Where(c => c is not null).Select(c => c.Trim()).Distinct().ToList();
        var productIds = (input.Routes ?? []).Where(r => r is not null).SelectMany(r => r.ProductIds ?? []).Where(p => p is not null).Select(p => p.Trim()).Distinct().ToList();
        var knownCampaigns = campaignIds.Count == 0 ? [] : (await db.Campaigns.AsNoTracking()
            .Where(c => c.OrganizationId == organizationId && campaignIds.Contains(c.CampaignId)).Select(c => c.CampaignId).ToListAsync(ct)).ToHashSet();
        var knownProducts = productIds.Count == 0 ? [] : (await db.Products.AsNoTracking()
            .Where(p => p.OrganizationId == organizationId && productIds.Contains(p.ProductId)).Select(p => p.ProductId).ToListAsync(ct)).ToHashSet();
        return ProfileValidation.Validate(input, knownCampaigns.Contains, knownProducts.Contains, options.Outbound.AllowPrivateNetworks);
    }

    private static void Apply(ExportProfile profile, ValidProfile valid, DateTimeOffset now)
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
        profile.UpdatedAt = now;
    }

    private static Task<ExportProfile?> Find(PostbackDb db, long organizationId, long id, CancellationToken ct) =>
        db.ExportProfiles.FirstOrDefaultAsync(p => p.OrganizationId == organizationId && p.Id == id, ct);

    private static ProblemHttpResult NotFound(long id) => Problems.NotFound($"There is no export profile {id}.");
}
