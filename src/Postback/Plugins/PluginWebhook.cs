using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Postback.Catalog;
using Postback.Infrastructure;
using Postback.Observability;
using Postback.Orders;
using Postback.Storage;

namespace Postback.Plugins;

public sealed record PostbackAccepted(
    string Outcome,
    long OrderId,
    string EventId,
    string CustomerType,
    bool Duplicate,
    IReadOnlyList<ScheduledDelivery> Deliveries,
    IReadOnlyList<string> UnknownSkus,
    IReadOnlyList<string> ImportedSkus,
    IReadOnlyList<string> IgnoredFields,
    IReadOnlyList<string> StrippedFields);

/// The receiving end of a plugin instance: /api/v1/plugins/webhooks/{kind}. Outside the API
/// key's reach (a CRM cannot send a Bearer header); the instance's secret authenticates it.
internal static class PluginWebhook
{
    public const int MaxBodyBytes = 64 * 1024;
    public const int MaxLoggedPayload = 16 * 1024;
    // A refused postback needs no stored order to explain, and anyone knowing an instance id can
    // send one: its logged payload is kept shorter.
    public const int MaxRefusedPayload = 4 * 1024;

    public static IEndpointRouteBuilder MapPluginWebhooks(this IEndpointRouteBuilder app)
    {
        app.MapMethods("/api/v1/plugins/webhooks/{kind}", [HttpMethods.Get, HttpMethods.Post], ReceiveAsync)
            .AllowAnonymous()
            .WithTags("Inbound plugins")
            .WithSummary("Receive a CRM postback (query string, form or JSON); authenticated by the plugin instance's secret.")
            .WithMetadata(new DocumentedBodyAttribute(typeof(CrmPostbackRequest), Required: false, "application/x-www-form-urlencoded", "application/json"))
            .Produces<PostbackAccepted>()
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);
        return app;
    }

    private static async Task<IResult> ReceiveAsync(
        string kind, HttpContext http, PostbackDb db, GroupCommit ingest, IInboundLogStore inboundLog, ISkuStore skus, TimeProvider time,
        RefusedPostbacks refused, ILoggerFactory logs, CancellationToken ct)
    {
        var log = logs.CreateLogger("Postback.Plugins.Inbound");
        if (!PluginKinds.IsKnown(kind))
        {
            return Problems.NotFound($"There is no plugin kind '{Short(kind)}'; use {string.Join(" or ", PluginKinds.All)}.");
        }
        var raw = await PostbackReader.ReadAsync(http.Request, MaxBodyBytes, ct);
        var now = time.GetUtcNow();

        // Which instance: pluginInstanceId (and, when given, organizationId) from the query or the body.
        var instanceText = Find(raw.Pairs, "pluginInstanceId");
        var organizationText = Find(raw.Pairs, "organizationId");
        if (string.IsNullOrWhiteSpace(instanceText))
        {
            if (raw.TooLarge)
            {
                return TooLarge(raw.Error!);
            }
            return raw.Error is not null
                ? Problems.Validation(raw.ErrorField!, raw.Error)
                : Problems.Validation("pluginInstanceId", "is required, in the query string or the body (the webhook URL and the field mapping of the plugin instance carry it)");
        }
        PluginInstance? instance = null;
        if (long.TryParse(instanceText.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var instanceId))
        {
            instance = await db.PluginInstances.AsNoTracking().FirstOrDefaultAsync(p => p.Id == instanceId, ct);
        }
        if (instance is null || instance.Kind != kind
            || (!string.IsNullOrWhiteSpace(organizationText) && organizationText.Trim() != instance.OrganizationId.ToString(CultureInfo.InvariantCulture)))
        {
            // Not attributable to a tenant, so not in any inbound log; the hub's own log says it
            // happened, without the payload.
            if (refused.Refuse(null, 0, http.Connection.RemoteIpAddress?.ToString(), "unknown") is { Limited: true } limited)
            {
                return TooMany(http, limited.RetryAfter);
            }
            log.LogInformation("Refused a {Kind} postback for unknown plugin instance", kind);
            PostbackMetrics.InboundPostback("unknown_instance");
            return Problems.NotFound($"There is no {kind} plugin instance '{Short(instanceText)}'{(string.IsNullOrWhiteSpace(organizationText) ? "" : $" in organization '{Short(organizationText)}'")}.");
        }

        var entry = new InboundLogEntry
        {
            OrganizationId = instance.OrganizationId,
            PluginInstanceId = instance.Id,
            ReceivedAt = now,
            Method = http.Request.Method,
            Outcome = "",
            Payload = PostbackReader.ForLog(raw.Pairs, instance.Secret, MaxLoggedPayload),
        };

        var address = http.Connection.RemoteIpAddress?.ToString();
        if (raw.TooLarge)
        {
            return await RefuseAsync(inboundLog, log, refused, http, address, entry, "too_large", 413, raw.Error) ?? TooLarge(raw.Error!);
        }
        var secretProblem = CheckSecret(instance.Secret, raw.Secrets);
        if (secretProblem is not null)
        {
            return await RefuseAsync(inboundLog, log, refused, http, address, entry, "refused", 401, secretProblem) ?? TypedResults.Problem(
                statusCode: StatusCodes.Status401Unauthorized,
                title: "The postback is not authenticated.",
                detail: "secret: " + secretProblem,
                extensions: new Dictionary<string, object?> { ["errors"] = new Dictionary<string, string[]> { ["secret"] = [secretProblem] } });
        }
        if (!instance.Enabled)
        {
            return await RefuseAsync(inboundLog, log, refused, http, address, entry, "disabled", 404, "the plugin instance is disabled") ?? Problems.NotFound($"The {kind} plugin instance {instance.Id} is disabled.");
        }
        if (raw.Error is not null)
        {
            return await RefuseAsync(inboundLog, log, refused, http, address, entry, "invalid", 400, $"{raw.ErrorField}: {raw.Error}")
                ?? Problems.Validation(raw.ErrorField!, raw.Error);
        }

        var errors = new ValidationErrors();
        var fields = PostbackReader.Fields(raw.Pairs, errors);
        var mapped = PostbackMapper.Map(fields, instance.Id, instance.CampaignId, now);
        errors.AddRange(mapped.Errors);
        if (errors.Any || mapped.Event is null)
        {
            var (field, reason) = errors.First;
            entry.CustomerType = mapped.Event?.Type;
            return await RefuseAsync(inboundLog, log, refused, http, address, entry, "invalid", 400, $"{field}: {reason}")
                ?? Problems.Validation(errors);
        }

        var incoming = mapped.Event;
        var resolution = await SkuResolver.ResolveAsync(db, instance.OrganizationId, incoming.Order.CampaignId ?? instance.CampaignId, incoming.Order, ct);
        incoming = incoming with { Order = resolution.Order };
        var unknownSkus = resolution.Unknown.Select(i => i.Sku!).Distinct(StringComparer.Ordinal).ToList();

        // The order, its event, its deliveries, the imported SKUs and the log entry: one
        // transaction of the same group commit as /events, so the postback is stored whole or
        // not at all. Not cancelled with the request: a CRM that gives up and sends again then
        // gets "duplicate".
        incoming = incoming with
        {
            Inbound = new InboundPostback(
                instance.Id,
                instance.ImportUnknownSkus ? resolution.Unknown.Select(i => new SkuToImport(i.Sku!, i.Name)).ToList() : [],
                new InboundLogRow(now, entry.Method, entry.Payload, incoming.Type,
                    IfNew: new InboundLogOutcome("accepted", 200, null),
                    IfDuplicate: new InboundLogOutcome("duplicate", 200, "the same postback was received before; nothing new was stored"))),
        };
        IngestedEvent stored;
        using var span = PostbackTracing.StartIngest("plugin", 1);
        try
        {
            stored = (await ingest.IngestAsync(instance.OrganizationId, [incoming], CancellationToken.None))[0];
        }
        catch (EventIdConflictException conflict)
        {
            // Cannot happen with our own ids (type and order are part of them); kept as a clear answer.
            await RecordAsync(inboundLog, log, entry, "invalid", 409, conflict.Message);
            return Problems.Conflict("eventId", conflict.Message);
        }
        catch (Exception e)
        {
            // Nothing of the postback was stored; the log says so, and the CRM may send it again.
            log.LogError(e, "Storing a postback for plugin instance {InstanceId} failed", instance.Id);
            entry.OrderId = incoming.Order.OrderId;
            entry.CustomerType = incoming.Type;
            await RecordAsync(inboundLog, log, entry, "failed", 500, "the hub could not store the postback; nothing was stored, send it again");
            return TypedResults.Problem(statusCode: StatusCodes.Status500InternalServerError, title: "The postback could not be stored.",
                detail: "Nothing was stored; send it again.");
        }
        var outcome = stored.Duplicate ? "duplicate" : "accepted";
        log.LogDebug("Inbound postback for plugin instance {InstanceId}: {Outcome} ({Status})", instance.Id, outcome, 200);
        PostbackMetrics.InboundPostback(outcome);
        PostbackMetrics.EventsStored("plugin", stored.Duplicate ? 0 : 1);

        // A link that committed between our SKU lookup and our commit did not see this order:
        // look again now that it is stored (SkuStore.ResolveLateLinksAsync).
        if (unknownSkus.Count > 0)
        {
            var late = await skus.ResolveLateLinksAsync(instance.OrganizationId, incoming.Order.OrderId, unknownSkus, CancellationToken.None);
            unknownSkus = unknownSkus.Except(late, StringComparer.Ordinal).ToList();
        }

        return TypedResults.Ok(new PostbackAccepted(
            outcome, incoming.Order.OrderId, stored.Event.EventId, incoming.Type, stored.Duplicate, stored.Deliveries,
            unknownSkus, stored.ImportedSkus, mapped.IgnoredFields, mapped.StrippedFields));
    }

    private static InboundLogEntry Finish(InboundLogEntry entry, string outcome, int status, string? reason)
    {
        entry.Outcome = outcome;
        entry.StatusCode = status;
        entry.Reason = reason is null ? null : PostbackMapper.Shorten(reason, 999);
        if (outcome is not ("accepted" or "duplicate") && entry.Payload.Length > MaxRefusedPayload)
        {
            entry.Payload = Text.Clip(entry.Payload, MaxRefusedPayload + 1, "…");
        }
        return entry;
    }

    /// Every secret the postback carries (query, header, body) must be the instance's. Compared
    /// as SHA-256 digests in constant time, so neither the content nor the length leaks.
    private static string? CheckSecret(string expected, IReadOnlyList<string> given)
    {
        if (given.Count == 0)
        {
            return $"is missing; send it as the secret parameter (query string or body) or the {PostbackReader.SecretHeader} header";
        }
        var want = SHA256.HashData(Encoding.UTF8.GetBytes(expected));
        var ok = true;
        foreach (var secret in given)
        {
            ok &= CryptographicOperations.FixedTimeEquals(want, SHA256.HashData(Encoding.UTF8.GetBytes(secret)));
        }
        return ok ? null : "does not match this plugin instance's secret";
    }

    /// A refused postback: logged whole while its instance has few this hour, else only counted
    /// (RefusedPostbacks); answered 429 instead when its instance or address is past the limit.
    private static async Task<IResult?> RefuseAsync(
        IInboundLogStore inboundLog, ILogger log, RefusedPostbacks refused, HttpContext http, string? address,
        InboundLogEntry entry, string outcome, int status, string? reason)
    {
        var verdict = refused.Refuse(entry.PluginInstanceId, entry.OrganizationId, address, outcome);
        if (verdict.KeepWhole)
        {
            await RecordAsync(inboundLog, log, entry, outcome, status, reason);
        }
        return verdict.Limited ? TooMany(http, verdict.RetryAfter) : null;
    }

    private static IResult TooMany(HttpContext http, TimeSpan retryAfter)
    {
        var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
        http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        return TypedResults.Problem(
            statusCode: StatusCodes.Status429TooManyRequests,
            title: "Too many refused postbacks.",
            detail: $"Too many postbacks from this address or for this plugin instance were refused; try again in {seconds} s.");
    }

    private static async Task RecordAsync(IInboundLogStore inboundLog, ILogger log, InboundLogEntry entry, string outcome, int status, string? reason)
    {
        Finish(entry, outcome, status, reason);
        PostbackMetrics.InboundPostback(outcome);
        log.LogInformation("Inbound postback for plugin instance {InstanceId}: {Outcome} ({Status})", entry.PluginInstanceId, outcome, status);
        try
        {
            await inboundLog.AddAsync(entry, CancellationToken.None);
        }
        catch (DbUpdateException e)
        {
            // The answer to the CRM stands (its order is stored or refused either way); losing a
            // log line is not worth making it send again.
            log.LogError(e, "Could not write the inbound log entry for plugin instance {InstanceId}", entry.PluginInstanceId);
        }
    }

    private static ProblemHttpResult TooLarge(string reason) => TypedResults.Problem(
        statusCode: StatusCodes.Status413PayloadTooLarge,
        title: "The request body is too large.",
        detail: "body: " + reason,
        extensions: new Dictionary<string, object?> { ["errors"] = new Dictionary<string, string[]> { ["body"] = [reason] } });

    private static string? Find(IReadOnlyList<KeyValuePair<string, string>> pairs, string name) =>
        pairs.Where(p => p.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Select(p => p.Value).FirstOrDefault(v => !string.IsNullOrWhiteSpace(v));

    private static string Short(string s) => PostbackMapper.Shorten(s);
}

/// What a CRM sends to /api/v1/plugins/webhooks/{kind}, for the OpenAPI document: its own
/// field names (the plugin instance's mapping), in the query string, a form or a JSON object.
[System.ComponentModel.Description("The CRM's postback fields: pluginInstanceId and secret, the customer type, the order's fields in the CRM's names (orderId, customerId, emailAddress, product1_id, ...).")]
public sealed class CrmPostbackRequest : Dictionary<string, string>;
