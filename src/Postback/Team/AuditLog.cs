using System.Globalization;
using System.Security.Claims;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Postback.Catalog;
using Postback.ExportProfiles;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.Team;

/// Who changed what. Changes to the operator-managed records (profiles, campaigns, plugins,
/// settings, keys, users, the organization) are written by PostbackDb.SaveChanges (AuditHook) in the
/// same transaction as the change, with the changed fields (old and new value, secrets masked).
/// Operations done in bulk statements (retry, replay, cancel, link, ...) get one entry per
/// request after it succeeded (AuditMiddleware), naming the action and the resource.
public static class AuditLog
{
    public const string WrittenItem = "postback:audited";
    public const string Masked = "***";

    // Records an operator manages. Orders, events and deliveries change by the thousand through
    // ingest and the workers; their operator actions come through AuditMiddleware.
    private static readonly Dictionary<Type, string> Audited = new()
    {
        [typeof(Organization)] = "organization",
        [typeof(ApiKey)] = "api-key",
        [typeof(User)] = "user",
        [typeof(Campaign)] = "campaign",
        [typeof(Product)] = "product",
        [typeof(ExportProfile)] = "export-profile",
        [typeof(Plugins.PluginInstance)] = "plugin-instance",
        [typeof(Confirmations.ConfirmationSettings)] = "confirmation-settings",
        [typeof(Catalog.ImportedSku)] = "sku",
    };

    public static bool IsSecret(string field) =>
        field.Contains("secret", StringComparison.OrdinalIgnoreCase) || field.Contains("password", StringComparison.OrdinalIgnoreCase)
        || field.Contains("token", StringComparison.OrdinalIgnoreCase) || field.Contains("hash", StringComparison.OrdinalIgnoreCase)
        || field.Equals("key", StringComparison.OrdinalIgnoreCase);

    /// The acting user or key of the current request, or null (a worker, the bootstrap).
    public static (long OrganizationId, string Actor)? ActorOf(HttpContext? http)
    {
        var user = http?.User;
        if (user?.Identity?.IsAuthenticated != true || user.FindFirst(ApiKeyAuthenticationHandler.OrganizationClaim) is null
            || user.FindFirst(TeamClaims.Actor) is null || Team.RolePolicies.IsReadMethod(http!.Request.Method))
        {
            return null;
        }
        return (user.OrganizationId(), user.Actor());
    }

    /// The request's verb: the last literal path segment of a POST (retry, replay, confirm, link),
    /// a page handler (?handler=Revoke), or create/update/delete by method.
    public static string Verb(HttpContext http, EntityState? state = null)
    {
        if (http.Request.Query["handler"].FirstOrDefault() is { Length: > 0 } handler && !handler.Equals("Create", StringComparison.OrdinalIgnoreCase)
            && !handler.Equals("Save", StringComparison.OrdinalIgnoreCase))
        {
            return handler.ToLowerInvariant();
        }
        var segments = (http.Request.Path.Value ?? "").Trim('/').Split('/');
        var last = segments[^1];
        // /api/v1/deliveries/replay, /api/v1/deliveries/5/retry, /api/v1/skus/ABC/link
        if (HttpMethods.IsPost(http.Request.Method) && segments[0] == "api" && segments.Length >= 4 && last.Length > 0 && !char.IsDigit(last[0]))
        {
            return last;
        }
        return state switch
        {
            EntityState.Added => "create",
            EntityState.Deleted => "delete",
            EntityState.Modified => "update",
            _ => HttpMethods.IsPost(http.Request.Method) ? "create" : HttpMethods.IsDelete(http.Request.Method) ? "delete" : "update",
        };
    }

    public sealed record Pending(EntityEntry Entry, string ResourceType, EntityState State, Dictionary<string, AuditChange> Changes);

    /// Before saving: the audited entries and their changed fields (from → to).
    public static List<Pending> Collect(PostbackDb db)
    {
        var pending = new List<Pending>();
        foreach (var entry in db.ChangeTracker.Entries())
        {
            if (entry.State is not (EntityState.Added or EntityState.Modified or EntityState.Deleted)
                || !Audited.TryGetValue(entry.Metadata.ClrType, out var type))
            {
                continue;
            }
            var changes = new Dictionary<string, AuditChange>(StringComparer.Ordinal);
            foreach (var property in entry.Properties)
            {
                var name = JsonNamingPolicy.CamelCase.ConvertName(property.Metadata.Name);
                if (property.Metadata.IsPrimaryKey() || name is "organizationId" or "createdAt" or "updatedAt" or "normalizedEmail" or "sessionVersion")
                {
                    continue;
                }
                var before = entry.State == EntityState.Added ? null : property.OriginalValue;
                var after = entry.State == EntityState.Deleted ? null : property.CurrentValue;
                if (entry.State == EntityState.Modified && (!property.IsModified || Equals(Show(before), Show(after))))
                {
                    continue;
                }
                if (entry.State == EntityState.Added && after is null)
                {
                    continue;
                }
                if (entry.State == EntityState.Deleted)
                {
                    continue;
                }
                changes[name] = IsSecret(name)
                    ? new AuditChange(before is null ? null : Masked, after is null ? null : Masked)
                    : new AuditChange(Show(before), Show(after));
            }
            pending.Add(new Pending(entry, type, entry.State, changes));
        }
        return pending;
    }

    private static string? Show(object? value) => value switch
    {
        null => null,
        string text => text,
        bool flag => flag ? "true" : "false",
        long or int or decimal or double => Convert.ToString(value, CultureInfo.InvariantCulture),
        DateTimeOffset t => t.ToString("O", CultureInfo.InvariantCulture),
        // Lists (mappings, routes, e-mails) as JSON; a mapping's static value may be a secret
        // header, so header values are masked.
        _ => MaskHeaders(JsonSerializer.Serialize(value, value.GetType(), JsonOptions)),
    };

    public static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web);

    private static string MaskHeaders(string json)
    {
        try
        {
            var node = System.Text.Json.Nodes.JsonNode.Parse(json);
            if (node is System.Text.Json.Nodes.JsonArray array)
            {
                foreach (var item in array.OfType<System.Text.Json.Nodes.JsonObject>())
                {
                    if (item["exportName"]?.GetValue<string>() is { } export && export.StartsWith("header:", StringComparison.OrdinalIgnoreCase) && item.ContainsKey("static"))
                    {
                        item["static"] = Masked;
                    }
                }
            }
            return node?.ToJsonString() ?? json;
        }
        catch (JsonException)
        {
            return json;
        }
        catch (InvalidOperationException)
        {
            return json;
        }
    }

    /// After saving (ids assigned): the entries, added to the same unit of work.
    public static void Add(PostbackDb db, HttpContext http, long organizationId, string actor, List<Pending> pending, DateTimeOffset now)
    {
        foreach (var p in pending)
        {
            var id = p.Entry.Metadata.FindPrimaryKey()!.Properties.Select(k => p.Entry.Property(k.Name).CurrentValue).FirstOrDefault();
            var action = p.ResourceType == "api-key" && p.Changes.ContainsKey("revokedAt") ? "revoke" : Verb(http, p.State);
            db.Audit.Add(new AuditEntry
            {
                OrganizationId = p.Entry.Entity is Organization o ? o.Id : organizationId,
                At = now,
                Actor = actor,
                Action = action,
                ResourceType = p.ResourceType,
                ResourceId = Convert.ToString(id, CultureInfo.InvariantCulture),
                Changes = p.Changes.Count == 0 ? null : JsonSerializer.Serialize(p.Changes, JsonOptions),
            });
        }
        http.Items[WrittenItem] = true;
    }
}

/// The audit entries of a change an operator's request saves (PostbackDb.SaveChangesAsync asks
/// every save): its actor and audited records are read before the save, the entries are added
/// after it, in its transaction.
public sealed class AuditHook(IHttpContextAccessor accessor) : ISaveHook
{
    public ISaveFollowUp? Inspect(PostbackDb db)
    {
        var http = accessor.HttpContext;
        return AuditLog.ActorOf(http) is { } actor && AuditLog.Collect(db) is { Count: > 0 } audited
            ? new Entries(http!, actor.OrganizationId, actor.Actor, audited)
            : null;
    }

    private sealed class Entries(HttpContext http, long organizationId, string actor, List<AuditLog.Pending> audited) : ISaveFollowUp
    {
        public void Add(PostbackDb db)
        {
            var now = http.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
            AuditLog.Add(db, http, organizationId, actor, audited, now);
        }
    }
}

/// One audit entry for a successful change request that wrote none through SaveChanges
/// (bulk statements: retry, replay, cancel, link, confirm). Reads, logins, previews,
/// test-sends and event ingest are not changes an operator makes.
public sealed class AuditMiddleware(RequestDelegate next)
{
    private static readonly string[] NotChanges = ["preview", "test", "import-mapping", "login", "logout", "password"];

    public async Task InvokeAsync(HttpContext http, IServiceScopeFactory scopes, TimeProvider time)
    {
        await next(http);
        if (http.Response.StatusCode >= 400 || http.Items.ContainsKey(AuditLog.WrittenItem) || AuditLog.ActorOf(http) is not { } actor)
        {
            return;
        }
        var path = http.Request.Path.Value ?? "";
        if (!(path.StartsWith("/api/v1/", StringComparison.Ordinal) || path.StartsWith("/admin/", StringComparison.Ordinal))
            || path.StartsWith("/api/v1/events", StringComparison.Ordinal) || path.StartsWith("/api/v1/plugins/webhooks", StringComparison.Ordinal))
        {
            return;
        }
        var verb = AuditLog.Verb(http);
        var lastSegment = path.TrimEnd('/').Split('/')[^1];
        // An admin form that succeeded redirects; one answered 200 showed its errors or a preview.
        var adminDone = http.Response.StatusCode is >= 300 and < 400;
        if (NotChanges.Contains(verb) || NotChanges.Contains(lastSegment) || (path.StartsWith("/admin/", StringComparison.Ordinal) && !adminDone))
        {
            return;
        }
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<PostbackDb>();
        db.Audit.Add(new AuditEntry
        {
            OrganizationId = actor.OrganizationId,
            At = time.GetUtcNow(),
            Actor = actor.Actor,
            Action = verb,
            ResourceType = ResourceType(path),
            ResourceId = http.Request.RouteValues.Where(v => v.Key is "id" or "orderId" or "sku" or "campaignId" or "customerId" or "runId")
                .Select(v => Convert.ToString(v.Value, CultureInfo.InvariantCulture)).FirstOrDefault(),
        });
        await db.SaveChangesInTurnAsync(http.RequestAborted);
    }

    // "/api/v1/deliveries/5/retry" → "deliveries"; "/admin/orders/7" → "orders".
    private static string ResourceType(string path)
    {
        var segments = path.Trim('/').Split('/');
        var index = segments[0] == "api" ? 2 : 1;
        return index < segments.Length ? segments[index] : path;
    }
}
