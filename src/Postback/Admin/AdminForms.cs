using System.Globalization;
using Postback.ExportProfiles;
using Postback.Storage;
using Postback.Outbound;

namespace Postback.Admin;

/// Small helpers the admin forms share.
public static class AdminForms
{
    /// A whole number from a text input; blank is null. A bad value is an error on `field`.
    public static int? ParseInt(string? value, string field, AdminPageModel page)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }
        if (int.TryParse(value.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n))
        {
            return n;
        }
        page.AddError(field, "must be a whole number");
        return null;
    }

    public static long? ParseLong(string? value, string field, AdminPageModel page)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }
        if (long.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
        {
            return n;
        }
        page.AddError(field, "must be a whole number");
        return null;
    }

    /// A datetime-local input, read as UTC (the pages show every time in UTC).
    public static DateTimeOffset? ParseTime(string? value, string field, AdminPageModel page)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }
        if (DateTime.TryParse(value.Trim(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t))
        {
            return new DateTimeOffset(t, TimeSpan.Zero);
        }
        page.AddError(field, "must be a date and time, e.g. 2024-07-31T16:24");
        return null;
    }

    public static string? Invalid(AdminPageModel page, string field) => page.Error(field) is null ? null : "true";

    public static string Describe(ExportRoute r) =>
        $"{string.Join(", ", r.CustomerTypes)} · campaigns: {(r.CampaignIds is { Count: > 0 } c ? string.Join(", ", c) : "all")} · products: {(r.ProductIds is { Count: > 0 } p ? string.Join(", ", p) : "all")}";

    /// The request a profile sends, with merge tags in place of an order's values: the method, the
    /// URL, the headers and the body (JSON or form) exactly as the renderer builds them.
    public static RenderedRequest Example(ExportProfile p)
    {
        var tagged = p.Mappings.Select(m => m.Field is null ? m : m with { Field = null, Static = $"[{m.Field}]" }).ToList();
        var empty = new Orders.OrderData { OrderId = 0, Fields = new Dictionary<string, string>(), Items = [] };
        try
        {
            var r = RequestRenderer.Render(p.PostbackUrl, tagged, empty, new RenderContext(Orders.CustomerTypes.NewSale));
            var form = r.Header("Content-Type") is { } type && type.StartsWith(RequestRenderer.FormContentType, StringComparison.OrdinalIgnoreCase);
            // Shown to a person: [firstName] rather than %5BfirstName%5D.
            return r with { Url = Unescape(r.Url), Body = form && r.Body is not null ? Unescape(r.Body) : r.Body };
        }
        catch (ArgumentException)
        {
            return new RenderedRequest("GET", Template(p), [], null);
        }

        static string Unescape(string text) => Uri.UnescapeDataString(text.Replace('+', ' '));
    }

    /// The seeds' way of showing a profile: the URL with each mapping as name=[field] or name=static.
    public static string Template(ExportProfile p)
    {
        var parameters = p.Mappings.Where(m => !m.ExportName.StartsWith("header:", StringComparison.OrdinalIgnoreCase))
            .Select(m => m.ExportName + "=" + (m.Field is not null ? $"[{m.Field}]" : m.Static));
        return p.PostbackUrl + (p.Mappings.Count == 0 ? "" : "?" + string.Join("&", parameters));
    }
}
