using System.Globalization;
using System.Security.Claims;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Postback.Infrastructure;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.Plugins;

public sealed record PluginInstanceInput(string? Name, string? Kind, string? Secret, string? CampaignId, bool? ImportUnknownSkus, bool? Enabled);

/// What the operator pastes into the CRM. Konnektive refuses a postback URL with a '?', so it
/// gets the clean URL plus a field mapping that carries the ids and the secret instead.
public sealed record PluginSetup(
    string WebhookUrl,
    string WebhookUrlWithSecret,
    string PostbackUrl,
    JsonObject FieldMapping,
    string FieldMappingText);

public sealed record PluginInstanceView(
    long Id,
    long OrganizationId,
    string Name,
    string Kind,
    string Secret,
    string? CampaignId,
    bool ImportUnknownSkus,
    bool Enabled,
    PluginSetup Setup,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt);

public sealed record InboundLogView(
    long Id,
    long PluginInstanceId,
    DateTimeOffset ReceivedAt,
    string Method,
    string Outcome,
    int StatusCode,
    string? Reason,
    long? OrderId,
    string? EventId,
    string? CustomerType,
    string Payload);

internal static class PluginInstancesApi
{
    public const int MaxLogPage = PluginInstanceOperations.MaxLogPage;

    // Seed 000's field mapping, in its order; organizationId, pluginInstanceId and secret are filled in.
    public static readonly IReadOnlyList<string> KonnektiveSeedFields =
    [
        "country", "product1_qty", "orderId", "state", "product1_sku", "shipAddress2", "address2", "firstName", "shipState",
        "phoneNumber", "customerType", "shipCountry", "organizationId", "product1_name", "orderStatus", "postalCode",
        "product1_price", "shipAddress1", "city", "lastName", "shipCity", "address1", "emailAddress", "shipPostalCode",
        "pluginInstanceId",
    ];

    // Not in seed 000's list, added by Postback: without them an order that comes in through the
    // mapping has no customer history (customerId), exports send an empty order date
    // (dateCreated), routing by campaign falls back to the instance's campaign, and totals and
    // the ship-to name are blank.
    public static readonly IReadOnlyList<string> KonnektiveAddedFields =
        ["dateCreated", "customerId", "campaignId", "totalAmount", "shipFirstName", "shipLastName"];

    // Always in the mapping: they address the postback (the instance, its secret), say which
    // event it is, and key the order.
    public static readonly IReadOnlySet<string> KonnektiveRequiredFields =
        new HashSet<string>(["organizationId", "pluginInstanceId", "customerType", "orderId"], StringComparer.Ordinal);

    /// The order fields an operator may leave out of the generated mapping, in mapping order.
    public static IEnumerable<string> KonnektiveOptionalFields =>
        KonnektiveSeedFields.Concat(KonnektiveAddedFields).Where(f => !KonnektiveRequiredFields.Contains(f));

    public static RouteGroupBuilder MapPluginInstances(this RouteGroupBuilder api)
    {
        var group = api.MapGroup("/plugin-instances").WithTags("Inbound plugins");
        group.MapGet("/", List).WithSummary("All plugin instances, each with its secret and setup (webhook URL, Konnektive postback URL and field mapping).");
        group.MapPost("/", Create).WithSummary("Create a plugin instance (a secret is generated when none is given).");
        group.MapGet("/{id:long}", Get).WithSummary("One plugin instance with its secret and setup.");
        group.MapPut("/{id:long}", Replace).WithSummary("Change a plugin instance; a secret left out stays as it is.");
        group.MapDelete("/{id:long}", Delete).WithSummary("Delete a plugin instance; its postbacks are refused from then on.");
        group.MapGet("/{id:long}/inbound", InstanceLog).WithSummary("The postbacks this instance received, newest first (secrets masked).");
        api.MapGet("/inbound-log", OrganizationLog).WithTags("Inbound plugins")
            .WithSummary("Every postback received by this organization's plugin instances, newest first.");
        return api;
    }

    private static async Task<Ok<List<PluginInstanceView>>> List(ClaimsPrincipal user, PostbackDb db, HttpContext http, IOptions<PostbackOptions> options, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        var instances = await db.PluginInstances.AsNoTracking().Where(p => p.OrganizationId == organizationId).OrderBy(p => p.Id).ToListAsync(ct);
        var baseUrl = BaseUrl(http, options.Value);
        return TypedResults.Ok(instances.Select(i => View(i, baseUrl)).ToList());
    }

    private static async Task<Results<Ok<PluginInstanceView>, ProblemHttpResult>> Get(long id, ClaimsPrincipal user, PostbackDb db, HttpContext http, IOptions<PostbackOptions> options, CancellationToken ct)
    {
        var instance = await db.PluginInstances.AsNoTracking().FirstOrDefaultAsync(p => p.Id == id && p.OrganizationId == user.OrganizationId(), ct);
        return instance is null ? NotFound(id) : TypedResults.Ok(View(instance, BaseUrl(http, options.Value)));
    }

    private static async Task<Results<Created<PluginInstanceView>, ValidationProblem>> Create(
        PluginInstanceInput input, ClaimsPrincipal user, PostbackDb db, TimeProvider time, HttpContext http, IOptions<PostbackOptions> options, CancellationToken ct)
    {
        var (instance, errors) = await PluginInstanceOperations.CreateAsync(db, user.OrganizationId(), input, time.GetUtcNow(), ct);
        if (instance is null)
        {
            return Problems.Validation(errors);
        }
        return TypedResults.Created($"/api/v1/plugin-instances/{instance.Id}", View(instance, BaseUrl(http, options.Value)));
    }

    private static async Task<Results<Ok<PluginInstanceView>, ValidationProblem, ProblemHttpResult>> Replace(
        long id, PluginInstanceInput input, ClaimsPrincipal user, PostbackDb db, TimeProvider time, HttpContext http, IOptions<PostbackOptions> options, CancellationToken ct)
    {
        var instance = await PluginInstanceOperations.FindAsync(db, user.OrganizationId(), id, ct);
        if (instance is null)
        {
            return NotFound(id);
        }
        var errors = await PluginInstanceOperations.ReplaceAsync(db, instance, input, time.GetUtcNow(), ct);
        if (errors.Any)
        {
            return Problems.Validation(errors);
        }
        return TypedResults.Ok(View(instance, BaseUrl(http, options.Value)));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> Delete(long id, ClaimsPrincipal user, PostbackDb db, CancellationToken ct)
    {
        var instance = await PluginInstanceOperations.FindAsync(db, user.OrganizationId(), id, ct);
        if (instance is null)
        {
            return NotFound(id);
        }
        await PluginInstanceOperations.DeleteAsync(db, instance, ct);
        return TypedResults.NoContent();
    }

    private static async Task<Results<Ok<List<InboundLogView>>, ProblemHttpResult>> InstanceLog(
        long id, ClaimsPrincipal user, PostbackDb db, int? limit, long? before, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        if (!await db.PluginInstances.AnyAsync(p => p.Id == id && p.OrganizationId == organizationId, ct))
        {
            return NotFound(id);
        }
        return TypedResults.Ok(await PluginInstanceOperations.LogPageAsync(
            db.InboundLog.Where(e => e.OrganizationId == organizationId && e.PluginInstanceId == id), limit, before, ct));
    }

    private static async Task<Ok<List<InboundLogView>>> OrganizationLog(
        ClaimsPrincipal user, PostbackDb db, int? limit, long? before, string? outcome, CancellationToken ct)
    {
        var organizationId = user.OrganizationId();
        var query = db.InboundLog.Where(e => e.OrganizationId == organizationId);
        if (!string.IsNullOrEmpty(outcome))
        {
            query = query.Where(e => e.Outcome == outcome);
        }
        return TypedResults.Ok(await PluginInstanceOperations.LogPageAsync(query, limit, before, ct));
    }

    /// Postback:PublicBaseUrl when the hub is behind a proxy or a public name; else the address
    /// this request came in on.
    public static string BaseUrl(HttpContext http, PostbackOptions options)
    {
        var configured = options.PublicBaseUrl;
        return !string.IsNullOrWhiteSpace(configured)
            ? configured.Trim().TrimEnd('/')
            : $"{http.Request.Scheme}://{http.Request.Host}{http.Request.PathBase}".TrimEnd('/');
    }

    /// True when Postback:PublicBaseUrl is unset and the URLs would name this machine's loopback
    /// or a private address: a CRM on the internet cannot reach them.
    public static bool CrmCannotReach(string baseUrl, PostbackOptions options)
    {
        if (!string.IsNullOrWhiteSpace(options.PublicBaseUrl) || !Uri.TryCreate(baseUrl, UriKind.Absolute, out var uri))
        {
            return false;
        }
        var host = uri.IdnHost.Trim('[', ']');
        if (System.Net.IPAddress.TryParse(host, out var address))
        {
            return Outbound.NetworkGuard.IsPrivate(address);
        }
        return host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || !host.Contains('.')
            || host.EndsWith(".local", StringComparison.OrdinalIgnoreCase) || host.EndsWith(".internal", StringComparison.OrdinalIgnoreCase)
            || host.EndsWith(".lan", StringComparison.OrdinalIgnoreCase) || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase);
    }

    public static PluginInstanceView View(PluginInstance i, string baseUrl) => new(
        i.Id, i.OrganizationId, i.Name, i.Kind, i.Secret, i.CampaignId, i.ImportUnknownSkus, i.Enabled, Setup(i, baseUrl), i.CreatedAt, i.UpdatedAt);

    /// fields: the optional order fields to include (null: all of them).
    public static PluginSetup Setup(PluginInstance i, string baseUrl, IReadOnlySet<string>? fields = null)
    {
        var postbackUrl = $"{baseUrl}/api/v1/plugins/webhooks/{i.Kind}";
        var organization = i.OrganizationId.ToString(CultureInfo.InvariantCulture);
        var instance = i.Id.ToString(CultureInfo.InvariantCulture);
        var webhookUrl = $"{postbackUrl}?organizationId={organization}&pluginInstanceId={instance}";
        var mapping = new JsonObject();
        foreach (var field in KonnektiveSeedFields.Concat(KonnektiveAddedFields)
            .Where(f => fields is null || KonnektiveRequiredFields.Contains(f) || fields.Contains(f)))
        {
            mapping[field] = field switch
            {
                "organizationId" => organization,
                "pluginInstanceId" => instance,
                _ => $"[{field}]",
            };
        }
        mapping["secret"] = i.Secret;
        var text = mapping.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        return new PluginSetup(webhookUrl, $"{webhookUrl}&secret={Uri.EscapeDataString(i.Secret)}", postbackUrl, mapping, text);
    }

    private static ProblemHttpResult NotFound(long id) => Problems.NotFound($"There is no plugin instance {id}.");
}
