using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Postback.Catalog;
using Postback.Infrastructure;
using Postback.Storage;

namespace Postback.Plugins;

/// What the plugin instances API and the admin pages both do with plugin instances: validate,
/// create, change, delete, and read the inbound log.
public static partial class PluginInstanceOperations
{
    public const int MaxLogPage = 500;

    public static Task<PluginInstance?> FindAsync(PostbackDb db, long organizationId, long id, CancellationToken ct) =>
        db.PluginInstances.FirstOrDefaultAsync(p => p.Id == id && p.OrganizationId == organizationId, ct);

    public static async Task<(PluginInstance? Instance, ValidationErrors Errors)> CreateAsync(
        PostbackDb db, long organizationId, PluginInstanceInput input, DateTimeOffset now, CancellationToken ct)
    {
        var errors = await ValidateAsync(db, organizationId, input, ct);
        if (errors.Any)
        {
            return (null, errors);
        }
        var instance = new PluginInstance
        {
            OrganizationId = organizationId,
            Name = input.Name!.Trim(),
            Kind = input.Kind!,
            Secret = string.IsNullOrEmpty(input.Secret) ? GenerateSecret() : input.Secret,
            CampaignId = NullIfBlank(input.CampaignId),
            ImportUnknownSkus = input.ImportUnknownSkus ?? false,
            Enabled = input.Enabled ?? true,
            CreatedAt = now,
            UpdatedAt = now,
        };
        db.PluginInstances.Add(instance);
        await db.SaveChangesInTurnAsync(ct);
        return (instance, errors);
    }

    /// Changes a tracked instance; a secret left out stays as it is. Nothing is written on errors.
    public static async Task<ValidationErrors> ReplaceAsync(
        PostbackDb db, PluginInstance instance, PluginInstanceInput input, DateTimeOffset now, CancellationToken ct)
    {
        var errors = await ValidateAsync(db, instance.OrganizationId, input, ct);
        if (errors.Any)
        {
            return errors;
        }
        instance.Name = input.Name!.Trim();
        instance.Kind = input.Kind!;
        if (!string.IsNullOrEmpty(input.Secret))
        {
            instance.Secret = input.Secret;
        }
        instance.CampaignId = NullIfBlank(input.CampaignId);
        instance.ImportUnknownSkus = input.ImportUnknownSkus ?? instance.ImportUnknownSkus;
        instance.Enabled = input.Enabled ?? instance.Enabled;
        instance.UpdatedAt = now;
        await db.SaveChangesInTurnAsync(ct);
        return errors;
    }

    public static async Task DeleteAsync(PostbackDb db, PluginInstance instance, CancellationToken ct)
    {
        db.PluginInstances.Remove(instance);
        await db.SaveChangesInTurnAsync(ct);
    }

    /// A page of the inbound log, newest first.
    public static async Task<List<InboundLogView>> LogPageAsync(IQueryable<InboundLogEntry> query, int? limit, long? before, CancellationToken ct)
    {
        if (before is { } cursor)
        {
            query = query.Where(e => e.Id < cursor);
        }
        return await query.AsNoTracking()
            .OrderByDescending(e => e.Id)
            .Take(Math.Clamp(limit ?? 100, 1, MaxLogPage))
            .Select(e => new InboundLogView(e.Id, e.PluginInstanceId, e.ReceivedAt, e.Method, e.Outcome, e.StatusCode, e.Reason, e.OrderId, e.EventId, e.CustomerType, e.Payload))
            .ToListAsync(ct);
    }

    public static async Task<ValidationErrors> ValidateAsync(PostbackDb db, long organizationId, PluginInstanceInput input, CancellationToken ct)
    {
        var errors = new ValidationErrors();
        if (string.IsNullOrWhiteSpace(input.Name))
        {
            errors.Add("name", "is required");
        }
        else if (input.Name.Trim().Length > 200)
        {
            errors.Add("name", "must be at most 200 characters");
        }
        else if (input.Name.Any(char.IsControl))
        {
            errors.Add("name", "must not contain control characters");
        }
        if (string.IsNullOrEmpty(input.Kind))
        {
            errors.Add("kind", $"is required: {string.Join(" or ", PluginKinds.All)}");
        }
        else if (!PluginKinds.IsKnown(input.Kind))
        {
            errors.Add("kind", $"'{input.Kind}' is not a plugin kind; use {string.Join(" or ", PluginKinds.All)}");
        }
        if (!string.IsNullOrEmpty(input.Secret) && !SecretPattern().IsMatch(input.Secret))
        {
            // It travels in URLs and in the CRM's field mapping: URL-safe characters only.
            errors.Add("secret", "must be 16 to 200 letters, digits, '.', '_', '~' or '-' (leave it out to have one generated)");
        }
        if (!string.IsNullOrWhiteSpace(input.CampaignId))
        {
            var campaignId = input.CampaignId.Trim();
            if (!await db.Campaigns.AnyAsync(c => c.OrganizationId == organizationId && c.CampaignId == campaignId, ct))
            {
                errors.Add("campaignId", $"there is no campaign '{Text.Clip(campaignId, 65, "…")}'; create it first (POST /api/v1/campaigns)");
            }
        }
        return errors;
    }

    public static string GenerateSecret() => "pbs_" + Base64Url(RandomNumberGenerator.GetBytes(32));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static string? NullIfBlank(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();

    [GeneratedRegex("^[A-Za-z0-9._~-]{16,200}$")]
    private static partial Regex SecretPattern();
}
