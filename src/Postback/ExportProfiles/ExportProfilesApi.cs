using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Postback.Catalog;
using Postback.Infrastructure;
using Postback.Orders;
using Postback.Organizations;
using Postback.Outbound;
using Postback.Storage;

namespace Postback.ExportProfiles;

public sealed record ExportProfileView(
    long Id, string Name, string Type, string PostbackUrl, int ExportDelayMinutes, bool Enabled,
    IReadOnlyList<ExportMapping> Mappings, IReadOnlyList<ExportRoute> Routes, int RetryCapMinutes, int? GiveUpAfterHours,
    string? SigningSecret, string Ordering, bool Coalesce, IReadOnlyList<ProfileCapture> Captures, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] FileSettingsView? File = null)
{
    public static ExportProfileView From(ExportProfile p) =>
        new(p.Id, p.Name, p.Type, p.PostbackUrl, p.ExportDelayMinutes, p.Enabled, p.Mappings, p.Routes, p.RetryCapMinutes, p.GiveUpAfterHours, p.SigningSecret,
            p.Ordering, p.Coalesce, p.Captures, p.CreatedAt, p.UpdatedAt, FileSettingsView.From(p.File));
}

/// Which order to render: a stored one by id, or one given inline; and as which event type.
public sealed record RenderInput(long? OrderId, JsonElement? Order, string? CustomerType);

public sealed record RequestView(string Method, string Url, IReadOnlyList<KeyValuePair<string, string>> Headers, string? Body, string Raw)
{
    public static RequestView From(RenderedRequest r) => new(r.Method, r.Url, r.Headers, r.Body, OutboundSender.ToRawHttp(r));
}

public sealed record RoutingView(string EventType, bool Fires, string? FiredCustomerType, string Explanation);

public sealed record PreviewView(
    string CustomerType, RoutingView Routing, RequestView Request,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? Csv = null);

public sealed record TestSendView(RequestView Request, bool Succeeded, OutboundResponse? Response, double DurationMs, string? Error);

public sealed record ImportMappingView(IReadOnlyList<ExportMapping> Mappings, ExportProfileView? Profile);

internal static class ExportProfilesApi
{
    public static IServiceCollection AddExportProfiles(this IServiceCollection services) =>
        services.AddSingleton<ICampaignUsage, ProfileCampaignUsage>();

    public static RouteGroupBuilder MapExportProfiles(this RouteGroupBuilder api)
    {
        var group = api.MapGroup("/export-profiles").WithTags("Export profiles");
        group.MapGet("/", List).WithSummary("All export profiles of the organization.");
        group.MapPost("/", Create).WithSummary("Create an export profile: URL, field mappings, routing, delay.");
        group.MapGet("/{id:long}", Get).WithSummary("One export profile.");
        group.MapPut("/{id:long}", Replace).WithSummary("Replace an export profile; deliveries already scheduled keep their due time.");
        group.MapDelete("/{id:long}", Delete).WithSummary("Delete an export profile; its pending deliveries are cancelled; sent ones stay as the record.");
        group.MapPost("/{id:long}/preview", Preview).WithSummary("The exact request the profile would send for an order.");
        group.MapPost("/{id:long}/test", TestSend).WithSummary("Send the profile's request for an order once, now, and show the answer.");
        group.MapPost("/import-mapping", ImportMapping)
            .WithMetadata(new DocumentedBodyAttribute(typeof(KonnektiveMappingRequest)))
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
        var (profile, errors) = await ExportProfileOperations.CreateAsync(input, user.OrganizationId(), db, time.GetUtcNow(), options.Value, ct);
        if (profile is null)
        {
            return Problems.Validation(errors);
        }
        return TypedResults.Created($"/api/v1/export-profiles/{profile.Id}", ExportProfileView.From(profile));
    }

    private static async Task<Results<Ok<ExportProfileView>, ValidationProblem, ProblemHttpResult>> Replace(
        long id, ExportProfileInput input, ClaimsPrincipal user, PostbackDb db, IProfileDeliveries deliveries, TimeProvider time,
        IOptions<PostbackOptions> options, CancellationToken ct)
    {
        var profile = await Find(db, user.OrganizationId(), id, ct);
        if (profile is null)
        {
            return NotFound(id);
        }
        var errors = await ExportProfileOperations.ReplaceAsync(profile, input, db, deliveries, time.GetUtcNow(), options.Value, ct);
        if (errors.Any)
        {
            return Problems.Validation(errors);
        }
        return TypedResults.Ok(ExportProfileView.From(profile));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> Delete(
        long id, ClaimsPrincipal user, PostbackDb db, IProfileDeliveries deliveries, TimeProvider time, CancellationToken ct)
    {
        var profile = await Find(db, user.OrganizationId(), id, ct);
        if (profile is null)
        {
            return NotFound(id);
        }
        await ExportProfileOperations.DeleteAsync(profile, db, deliveries, time.GetUtcNow(), ct);
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
        return TypedResults.Ok(new PreviewView(rendered.CustomerType!, rendered.Routing!, RequestView.From(rendered.Request!), rendered.Csv));
    }

    private static async Task<Results<Ok<TestSendView>, Ok<ConnectionTestView>, ValidationProblem, ProblemHttpResult>> TestSend(
        long id, [FromBody(EmptyBodyBehavior = Microsoft.AspNetCore.Mvc.ModelBinding.EmptyBodyBehavior.Allow)] RenderInput? input,
        ClaimsPrincipal user, PostbackDb db, OutboundSender sender, IFileConnectionTest files, TimeProvider time, CancellationToken ct)
    {
        // A file profile's test connects to its destination, lists the directory, and writes and
        // deletes a probe file.
        if (await Find(db, user.OrganizationId(), id, ct) is { Type: ExportTypes.File, File: { } file })
        {
            return TypedResults.Ok(await files.TestAsync(file, ct));
        }
        input ??= new RenderInput(null, null, null);
        var rendered = await RenderAsync(id, input, user.OrganizationId(), db, ct);
        if (rendered.Problem is not null)
        {
            return rendered.Problem;
        }
        if (rendered.Errors is not null)
        {
            return Problems.Validation(rendered.Errors);
        }
        var profile = await ExportProfileOperations.FindAsync(db, user.OrganizationId(), id, ct);
        if (profile is null)
        {
            return NotFound(id);
        }
        var request = ExportProfileOperations.ForTestSend(rendered.Request!, profile, time.GetUtcNow());
        var result = await sender.SendAsync(request, ct);
        return TypedResults.Ok(new TestSendView(RequestView.From(request), result.Succeeded, result.Response, Math.Round(result.DurationMs, 2), result.Error));
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
        var input = ExportProfileOperations.ToInput(profile) with { Mappings = mappings };
        var (valid, validationErrors) = await ExportProfileOperations.ValidateAsync(input, organizationId, db, options.Value, ct, profile.File);
        if (valid is null)
        {
            return Problems.Validation(Rename(validationErrors));
        }
        Apply(profile, valid, time.GetUtcNow());
        await db.SaveChangesInTurnAsync(ct);
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

    private static async Task<Rendered> RenderAsync(long id, RenderInput input, long organizationId, PostbackDb db, CancellationToken ct)
    {
        var outcome = await ExportProfileOperations.RenderAsync(id, input, organizationId, db, ct);
        return new Rendered(outcome.Request, outcome.CustomerType, outcome.Routing, outcome.Errors,
            outcome.NotFound is null ? null : Problems.NotFound(outcome.NotFound), outcome.Csv);
    }

    private sealed record Rendered(RenderedRequest? Request, string? CustomerType, RoutingView? Routing, ValidationErrors? Errors, ProblemHttpResult? Problem, string? Csv = null);

    private static Task<(ValidProfile?, ValidationErrors)> ValidateAsync(
        ExportProfileInput input, long organizationId, PostbackDb db, PostbackOptions options, CancellationToken ct) =>
        ExportProfileOperations.ValidateAsync(input, organizationId, db, options, ct);

    private static void Apply(ExportProfile profile, ValidProfile valid, DateTimeOffset now) => ExportProfileOperations.Apply(profile, valid, now);

    private static Task<ExportProfile?> Find(PostbackDb db, long organizationId, long id, CancellationToken ct) =>
        ExportProfileOperations.FindAsync(db, organizationId, id, ct);

    private static ProblemHttpResult NotFound(long id) => Problems.NotFound(ExportProfileOperations.NotFoundMessage(id));
}
