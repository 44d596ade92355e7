using System.Net;
using Postback.Fields;
using Postback.Infrastructure;
using Postback.Orders;
using Postback.Outbound;

namespace Postback.ExportProfiles;

public sealed record ExportProfileInput(
    string? Name,
    string? Type,
    string? PostbackUrl,
    int? ExportDelayMinutes,
    bool? Enabled,
    IReadOnlyList<ExportMapping>? Mappings,
    IReadOnlyList<ExportRoute>? Routes,
    int? RetryCapMinutes = null,
    int? GiveUpAfterHours = null,
    string? SigningSecret = null,
    string? Ordering = null,
    bool? Coalesce = null,
    IReadOnlyList<ProfileCapture>? Captures = null,
    FileSettingsInput? File = null);

/// A profile that passed validation, normalized (trimmed names, merge tags without brackets,
/// method values upper-case).
public sealed record ValidProfile(
    string Name, string Type, string PostbackUrl, int ExportDelayMinutes, bool Enabled, List<ExportMapping> Mappings, List<ExportRoute> Routes,
    int RetryCapMinutes, int? GiveUpAfterHours, string? SigningSecret = null,
    string Ordering = ProfileOrdering.None, bool Coalesce = false, List<ProfileCapture>? Captures = null, FileSettings? File = null);

public static class ProfileValidation
{
    // Konnektive's own words (seed 000), so operators recognise it.
    public const string QuestionMarkError = "Invalid Postback URL: cannot contain a question mark";
    public const int MaxMappings = 200;
    public const int MaxRoutes = 100;
    public const int MaxDelayMinutes = 43_200;
    public const int MaxStaticLength = 2_000;
    public const int MaxRetryCapMinutes = 1_440;
    public const int MaxGiveUpHours = 8_760;
    public const int MaxCaptures = 20;

    // Headers the HTTP stack owns: letting a mapping set them would corrupt the request.
    private static readonly HashSet<string> ForbiddenHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "TE", "Trailer",
        "Proxy-Connection", "Proxy-Authorization", "Expect",
    };

    public static (ValidProfile? Profile, ValidationErrors Errors) Validate(
        ExportProfileInput input, Func<string, bool> campaignExists, Func<string, bool> productExists, bool allowPrivateNetworks,
        FileValidationContext? files = null)
    {
        var errors = new ValidationErrors();
        var name = input.Name?.Trim();
        if (string.IsNullOrEmpty(name))
        {
            errors.Add("name", "is required");
        }
        else if (name.Length > 200 || name.Any(char.IsControl))
        {
            errors.Add("name", "must be at most 200 characters, without control characters");
        }

        var type = input.Type?.Trim().ToLowerInvariant() ?? ExportTypes.Postback;
        if (type is not (ExportTypes.Postback or ExportTypes.File))
        {
            errors.Add("type", "must be postback (an HTTP request per event) or file (a CSV file per route per day)");
        }
        var isFile = type == ExportTypes.File;

        var url = input.PostbackUrl?.Trim();
        if (isFile)
        {
            if (!string.IsNullOrEmpty(url))
            {
                errors.Add("postbackUrl", "a file profile uploads files and has no postbackUrl; leave it out");
            }
            url = "";
        }
        else if (CheckUrl(url, allowPrivateNetworks) is { } urlError)
        {
            errors.Add("postbackUrl", urlError);
        }

        FileSettings? file = null;
        if (isFile)
        {
            file = FileSettingsValidation.Validate(input.File, files ?? new FileValidationContext(allowPrivateNetworks, null), errors);
        }
        else if (input.File is not null && type == ExportTypes.Postback)
        {
            errors.Add("file", "only a profile of type file has a file block");
        }

        var delay = input.ExportDelayMinutes ?? 0;
        if (delay is < 0 or > MaxDelayMinutes)
        {
            errors.Add("exportDelayMinutes", $"must be from 0 to {MaxDelayMinutes} minutes");
        }

        var retryCap = input.RetryCapMinutes ?? 60;
        if (retryCap is < 1 or > MaxRetryCapMinutes)
        {
            errors.Add("retryCapMinutes", $"must be from 1 to {MaxRetryCapMinutes} minutes");
        }
        if (input.GiveUpAfterHours is < 1 or > MaxGiveUpHours)
        {
            errors.Add("giveUpAfterHours", $"must be from 1 to {MaxGiveUpHours} hours, or null to retry until the delivery succeeds");
        }

        var signingSecret = string.IsNullOrWhiteSpace(input.SigningSecret) ? null : input.SigningSecret.Trim();
        if (signingSecret is not null && isFile)
        {
            errors.Add("signingSecret", "signs HTTP requests; a file profile sends none");
        }
        else if (signingSecret is not null && Outbound.WebhookSignature.Check(signingSecret) is { } badSecret)
        {
            errors.Add("signingSecret", badSecret);
        }

        var ordering = input.Ordering?.Trim() ?? ProfileOrdering.None;
        if (ordering.Equals(ProfileOrdering.None, StringComparison.OrdinalIgnoreCase))
        {
            ordering = ProfileOrdering.None;
        }
        else if (ordering.Equals(ProfileOrdering.PerOrder, StringComparison.OrdinalIgnoreCase))
        {
            ordering = ProfileOrdering.PerOrder;
        }
        else
        {
            errors.Add("ordering", $"must be {ProfileOrdering.None} (deliveries go out as they come due) or {ProfileOrdering.PerOrder} (one order's deliveries go out one at a time, in the order of their events)");
        }

        var coalesce = input.Coalesce ?? false;
        if (coalesce && delay == 0)
        {
            errors.Add("coalesce", "needs an export delay: events of one order are coalesced within it (set exportDelayMinutes above 0)");
        }

        var captures = ValidateCaptures(input.Captures ?? [], errors);
        var mappings = ValidateMappings(input.Mappings ?? [], errors, isFile);
        var routes = ValidateRoutes(input.Routes ?? [], errors, campaignExists, productExists);

        return errors.Any
            ? (null, errors)
            : (new ValidProfile(name!, type, url!, delay, input.Enabled ?? true, mappings, routes, retryCap, input.GiveUpAfterHours, signingSecret,
                ordering, coalesce, captures, file), errors);
    }

    public static string? CheckUrl(string? url, bool allowPrivateNetworks)
    {
        if (string.IsNullOrEmpty(url))
        {
            return "is required";
        }
        if (url.Contains('?'))
        {
            return QuestionMarkError;
        }
        if (url.Length > 2048)
        {
            return "must be at most 2048 characters";
        }
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || url.StartsWith('/'))
        {
            return "must be an absolute http or https URL, such as https://postingmydata.com/partials.php";
        }
        if (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
        {
            return $"must be an http or https URL, not {uri.Scheme}:";
        }
        if (string.IsNullOrEmpty(uri.Host))
        {
            return "must name a host";
        }
        if (url.Contains('#'))
        {
            return "must not contain a fragment (#)";
        }
        if (!string.IsNullOrEmpty(uri.UserInfo))
        {
            return "must not contain a user name or password; send credentials with a header: mapping";
        }
        if (url.Any(c => char.IsControl(c) || c == ' '))
        {
            return "must not contain spaces or control characters";
        }
        if (!allowPrivateNetworks && IPAddress.TryParse(uri.IdnHost, out var ip) && NetworkGuard.IsPrivate(ip)
            || !allowPrivateNetworks && uri.IsLoopback)
        {
            return "points to a private or loopback address, which Postback:Outbound:AllowPrivateNetworks does not allow";
        }
        return null;
    }

    // A capture adds a field of its own to the order; it may not shadow a field the CRM sends
    // (the CRM's next postback would put it back) nor one the renderer derives.
    private static List<ProfileCapture> ValidateCaptures(IReadOnlyList<ProfileCapture> captures, ValidationErrors errors)
    {
        var result = new List<ProfileCapture>();
        if (captures.Count > MaxCaptures)
        {
            errors.Add("captures", $"a profile holds at most {MaxCaptures} captures");
            return result;
        }
        var fields = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < captures.Count; i++)
        {
            var path = $"captures[{i}]";
            var capture = captures[i];
            if (capture is null)
            {
                errors.Add(path, "must be an object {field, from}, e.g. {\"field\": \"erpOrderNumber\", \"from\": \"/data/erpId\"}");
                continue;
            }
            var field = capture.Field is null ? "" : FieldCatalog.NormalizeTag(capture.Field);
            var ok = true;
            if (field.Length == 0)
            {
                errors.Add(path + ".field", "is required: the name of the order field the value is stored in, e.g. erpOrderNumber");
                ok = false;
            }
            else if (FieldCatalog.Find(field) is { } known)
            {
                errors.Add(path + ".field", known.Derived
                    ? $"{known.Name} is a merge tag Postback computes; a capture needs a new field name"
                    : $"{known.Name} is a CRM field and cannot be overwritten by a capture; choose a new field name, e.g. erp{char.ToUpperInvariant(known.Name[0])}{known.Name[1..]}");
                ok = false;
            }
            else if (FieldCatalog.TryParseProductTag(field, out _, out _))
            {
                errors.Add(path + ".field", "product line tags (productN_...) come from the order's items and cannot be captured into");
                ok = false;
            }
            else if (!FieldCatalog.IsValidFieldName(field))
            {
                errors.Add(path + ".field", "must be a valid merge-tag name: a letter, then letters, digits or underscores (at most 64), e.g. erpOrderNumber");
                ok = false;
            }
            else if (fields.TryGetValue(field, out var earlier))
            {
                errors.Add(path + ".field", $"repeats captures[{earlier}].field (field names are case-insensitive)");
                ok = false;
            }
            if (capture.From is null)
            {
                errors.Add(path + ".from", "is required: a JSON Pointer (RFC 6901) into the receiver's answer, e.g. /data/erpId");
                ok = false;
            }
            else if (JsonPointer.Check(capture.From) is { } pointerError)
            {
                errors.Add(path + ".from", pointerError);
                ok = false;
            }
            if (ok)
            {
                fields[field] = i;
                result.Add(new ProfileCapture(field, capture.From!));
            }
        }
        return result;
    }

        private static List<ExportMapping> ValidateMappings(IReadOnlyList<ExportMapping> mappings, ValidationErrors errors, bool isFile = false)
    {
        var result = new List<ExportMapping>();
        if (mappings.Count > MaxMappings)
        {
            errors.Add("mappings", $"a profile holds at most {MaxMappings} mappings");
            return result;
        }
        var parameterNames = new Dictionary<string, int>(StringComparer.Ordinal);
        var headerNames = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < mappings.Count; i++)
        {
            var path = $"mappings[{i}]";
            var mapping = mappings[i];
            if (mapping is null)
            {
                errors.Add(path, "must be an object {exportName, field} or {exportName, static}");
                continue;
            }
            var exportName = mapping.ExportName?.Trim();
            if (string.IsNullOrEmpty(exportName))
            {
                errors.Add(path + ".exportName", "is required");
                continue;
            }
            if (exportName.Length > 128 || exportName.Any(char.IsControl))
            {
                errors.Add(path + ".exportName", "must be at most 128 characters, without control characters");
                continue;
            }
            if (mapping.Field is not null && mapping.Static is not null)
            {
                errors.Add(path, "give either field or static, not both");
                continue;
            }
            if (mapping.Field is null && mapping.Static is null)
            {
                errors.Add(path, "needs a field (a merge tag such as firstName) or a static value");
                continue;
            }

            if (isFile && RequestRenderer.IsHeader(exportName, out _))
            {
                errors.Add(path + ".exportName", "header: mappings set HTTP headers, and a file profile sends no HTTP request; name the CSV column without header:");
                continue;
            }

            if (RequestRenderer.IsHeader(exportName, out var header))
            {
                exportName = RequestRenderer.HeaderPrefix + header;
                if (CheckHeader(header, mapping, path, errors) is { } value)
                {
                    if (headerNames.TryGetValue(header, out var first))
                    {
                        errors.Add(path + ".exportName", $"repeats mappings[{first}].exportName (header names are case-insensitive)");
                        continue;
                    }
                    headerNames[header] = i;
                    result.Add(new ExportMapping(exportName, null, value));
                }
                continue;
            }

            if (parameterNames.TryGetValue(exportName, out var earlier))
            {
                errors.Add(path + ".exportName", $"repeats mappings[{earlier}].exportName; export names must be unique");
                continue;
            }
            parameterNames[exportName] = i;

            if (mapping.Field is not null)
            {
                var tag = FieldCatalog.NormalizeTag(mapping.Field);
                if (FieldCatalog.TryParseProductTag(tag, out var line, out _))
                {
                    if (line > FieldCatalog.MaxProductLines)
                    {
                        errors.Add(path + ".field", $"product lines run from 1 to {FieldCatalog.MaxProductLines}");
                        continue;
                    }
                }
                else if (!FieldCatalog.IsValidFieldName(tag))
                {
                    errors.Add(path + ".field", "must be a merge tag such as firstName or [firstName] (see GET /api/v1/fields)");
                    continue;
                }
                var known = FieldCatalog.Find(tag);
                result.Add(new ExportMapping(exportName, known?.Name ?? tag, null));
            }
            else
            {
                if (mapping.Static!.Length > MaxStaticLength)
                {
                    errors.Add(path + ".static", $"must be at most {MaxStaticLength} characters");
                    continue;
                }
                result.Add(new ExportMapping(exportName, null, mapping.Static));
            }
        }
        return result;
    }

    private static string? CheckHeader(string header, ExportMapping mapping, string path, ValidationErrors errors)
    {
        if (header.Length == 0 || !header.All(IsTokenChar))
        {
            errors.Add(path + ".exportName", "header: must be followed by a header name (letters, digits and - only), e.g. header:Content-Type");
            return null;
        }
        if (ForbiddenHeaders.Contains(header) || HeaderRules.Reserved.Contains(header))
        {
            errors.Add(path + ".exportName", $"the {header} header is set by Postback itself and cannot be mapped");
            return null;
        }
        if (mapping.Field is not null)
        {
            errors.Add(path + ".field", "header: mappings take a static value, not a field");
            return null;
        }
        var value = mapping.Static!;
        if (HeaderRules.ValueProblem(value) is { } problem)
        {
            errors.Add(path + ".static", $"{problem} (mapping header:{header})");
            return null;
        }
        if (value.Length > MaxStaticLength)
        {
            errors.Add(path + ".static", $"a header value must be at most {MaxStaticLength} characters without control characters");
            return null;
        }
        if (header.Equals(RequestRenderer.MethodControl, StringComparison.OrdinalIgnoreCase))
        {
            var method = value.Trim().ToUpperInvariant();
            if (!RequestRenderer.Methods.Contains(method))
            {
                errors.Add(path + ".static", $"header:httpMethod must be one of {string.Join(", ", RequestRenderer.Methods)}");
                return null;
            }
            return method;
        }
        if (header.Equals(RequestRenderer.MethodTypeControl, StringComparison.OrdinalIgnoreCase))
        {
            var methodType = value.Trim().ToUpperInvariant();
            if (!RequestRenderer.MethodTypes.Contains(methodType))
            {
                errors.Add(path + ".static", "header:httpMethodType must be GET (parameters in the URL) or POST (parameters in the body)");
                return null;
            }
            return methodType;
        }
        return value;
    }

    private static bool IsTokenChar(char c) =>
        char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c);

    private static List<ExportRoute> ValidateRoutes(
        IReadOnlyList<ExportRoute> routes, ValidationErrors errors, Func<string, bool> campaignExists, Func<string, bool> productExists)
    {
        var result = new List<ExportRoute>();
        var names = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        if (routes.Count > MaxRoutes)
        {
            errors.Add("routes", $"a profile holds at most {MaxRoutes} routes");
            return result;
        }
        for (var i = 0; i < routes.Count; i++)
        {
            var path = $"routes[{i}]";
            var route = routes[i];
            if (route is null)
            {
                errors.Add(path, "must be an object {customerTypes, campaignIds, productIds}");
                continue;
            }
            var ok = true;
            var routeName = string.IsNullOrWhiteSpace(route.Name) ? null : route.Name.Trim();
            if (routeName is not null && (routeName.Length > 64 || !routeName.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
            {
                errors.Add(path + ".name", "must be at most 64 letters, digits, '-', '_' or '.' (it goes into file names)");
                ok = false;
            }
            else if (names.TryGetValue(routeName ?? ExportRoute.DefaultName(i), out var sameName))
            {
                errors.Add(path + ".name", $"repeats the name of routes[{sameName}]; route names must be unique");
                ok = false;
            }
            else
            {
                names[routeName ?? ExportRoute.DefaultName(i)] = i;
            }
            var types = (route.CustomerTypes ?? []).Select(t => t?.Trim() ?? "").ToList();
            if (types.Count == 0)
            {
                errors.Add(path + ".customerTypes", "needs at least one customer type");
                ok = false;
            }
            for (var t = 0; t < types.Count; t++)
            {
                if (!CustomerTypes.IsKnown(types[t]))
                {
                    errors.Add($"{path}.customerTypes[{t}]", $"'{types[t]}' is not a customer type; use one of {CustomerTypes.ListForErrors}");
                    ok = false;
                }
            }
            var campaigns = (route.CampaignIds ?? []).Select(c => c?.Trim() ?? "").ToList();
            for (var c = 0; c < campaigns.Count; c++)
            {
                if (!campaignExists(campaigns[c]))
                {
                    errors.Add($"{path}.campaignIds[{c}]", $"there is no campaign '{campaigns[c]}' (create it under /api/v1/campaigns first)");
                    ok = false;
                }
            }
            var products = (route.ProductIds ?? []).Select(p => p?.Trim() ?? "").ToList();
            for (var p = 0; p < products.Count; p++)
            {
                if (!productExists(products[p]))
                {
                    errors.Add($"{path}.productIds[{p}]", $"there is no product '{products[p]}' in any campaign");
                    ok = false;
                }
            }
            if (ok)
            {
                result.Add(new ExportRoute(types.Distinct().ToList(), campaigns.Distinct().ToList(), products.Distinct().ToList(), routeName));
            }
        }
        return result;
    }
}
