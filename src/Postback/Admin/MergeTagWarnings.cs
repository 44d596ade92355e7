using Microsoft.EntityFrameworkCore;
using Postback.ExportProfiles;
using Postback.Fields;
using Postback.Orders;
using Postback.Storage;

namespace Postback.Admin;

/// Typos in a profile's merge tags. The API accepts any well-formed field name (an order may
/// carry extra fields the catalog does not list), so `[emailAdress]` would quietly render
/// empty and `[firstName` would go out as text. The profile page flags both, with the closest
/// known name.
public static class MergeTagWarnings
{
    // How many recent orders are read for the extra fields the organization receives.
    private const int RecentOrders = 200;

    public static async Task<HashSet<string>> KnownExtraFieldsAsync(PostbackDb db, long organizationId, CancellationToken ct)
    {
        var known = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var recent = await db.Orders.AsNoTracking().Where(o => o.OrganizationId == organizationId)
            .OrderByDescending(o => o.UpdatedAt).Take(RecentOrders).Select(o => o.Data).ToListAsync(ct);
        foreach (var data in recent)
        {
            known.UnionWith(OrderJson.Deserialize(data).Fields.Keys);
        }
        var profiles = await db.ExportProfiles.AsNoTracking().Where(p => p.OrganizationId == organizationId).ToListAsync(ct);
        known.UnionWith(profiles.SelectMany(p => p.Captures).Select(c => c.Field));
        return known;
    }

    public static IReadOnlyList<string> For(IReadOnlyList<ExportMapping> mappings, IReadOnlySet<string> knownExtra)
    {
        var warnings = new List<string>();
        foreach (var m in mappings)
        {
            if (m.Field is { } field)
            {
                var name = FieldCatalog.NormalizeTag(field);
                if (!IsKnown(name, knownExtra))
                {
                    warnings.Add(Closest(name, knownExtra) is { } guess
                        ? $"{m.ExportName}: [{name}] is not a known field — did you mean [{guess}]?"
                        : $"{m.ExportName}: [{name}] is not a known field, and no order received so far carries it; it renders empty until one does.");
                }
            }
            else if (m.Static is { } value && !RequestRenderer.IsHeader(m.ExportName, out _) && LooksLikeATag(value) is { } tag)
            {
                var guess = IsKnown(tag, knownExtra) ? tag : Closest(tag, knownExtra);
                warnings.Add($"{m.ExportName}: the static value \"{value}\" is sent as it is, not as a merge tag" + (guess is null ? "." : $" — did you mean the field [{guess}]?"));
            }
        }
        return warnings;
    }

    private static bool IsKnown(string name, IReadOnlySet<string> knownExtra) =>
        FieldCatalog.Find(name) is not null || FieldCatalog.TryParseProductTag(name, out _, out _) || knownExtra.Contains(name);

    // "[firstName", "firstName]", "[firstName]" typed as a static value, "{firstName}".
    private static string? LooksLikeATag(string value)
    {
        var v = value.Trim();
        if (v.Length < 2 || !(v[0] is '[' or '{' || v[^1] is ']' or '}'))
        {
            return null;
        }
        var inner = v.Trim('[', ']', '{', '}').Trim();
        return FieldCatalog.IsValidFieldName(inner) ? inner : null;
    }

    private static string? Closest(string name, IReadOnlySet<string> knownExtra)
    {
        var candidates = FieldCatalog.OrderFields.Concat(FieldCatalog.DerivedFields).Select(f => f.Name).Concat(knownExtra);
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var candidate in candidates)
        {
            var d = Distance(name.ToLowerInvariant(), candidate.ToLowerInvariant());
            if (d < bestDistance)
            {
                (best, bestDistance) = (candidate, d);
            }
        }
        // A guess only when it is close: at most a third of the name differs.
        return best is not null && bestDistance <= Math.Max(1, name.Length / 3) ? best : null;
    }

    private static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }
        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }
}
