using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Postback.Fields;
using Postback.Orders;
using Postback.Outbound;

namespace Postback.ExportProfiles;

/// What the renderer needs besides the order: the customer type of the route that fired and
/// the campaign's name from the catalog (if the campaign is known).
public sealed record RenderContext(string CustomerType, string? CampaignName = null);

/// Renders a profile into an HTTP request, the way Konnektive and CheckoutChamp document it
/// (PRODUCT.md section 3):
/// - by default a GET with every mapping as a query parameter, in mapping order;
/// - a static mapping named "header:Name" is a header; any header mapping makes it a POST with
///   the other mappings in the body;
/// - Content-Type application/json (case-insensitive) makes the body a JSON object, anything
///   else a form-encoded body;
/// - header:httpMethod picks POST/PUT/PATCH/DELETE, header:httpMethodType says where the
///   parameters go (GET: the URL; POST: the body). Without httpMethodType they go in the body
///   when there are real headers, else in the URL. Neither of the two is ever sent.
public static class RequestRenderer
{
    public const string HeaderPrefix = "header:";
    public const string MethodControl = "httpMethod";
    public const string MethodTypeControl = "httpMethodType";
    public const string FormContentType = "application/x-www-form-urlencoded";

    public static readonly IReadOnlyList<string> Methods = ["POST", "PUT", "PATCH", "DELETE"];
    public static readonly IReadOnlyList<string> MethodTypes = ["GET", "POST"];

    public static bool IsHeader(string exportName, out string headerName)
    {
        if (exportName.StartsWith(HeaderPrefix, StringComparison.OrdinalIgnoreCase))
        {
            headerName = exportName[HeaderPrefix.Length..].Trim();
            return true;
        }
        headerName = "";
        return false;
    }

    public static bool IsControl(string headerName) =>
        headerName.Equals(MethodControl, StringComparison.OrdinalIgnoreCase)
        || headerName.Equals(MethodTypeControl, StringComparison.OrdinalIgnoreCase);

    public static RenderedRequest Render(string postbackUrl, IReadOnlyList<ExportMapping> mappings, OrderData order, RenderContext context)
    {
        var headers = new List<KeyValuePair<string, string>>();
        var parameters = new List<KeyValuePair<string, string>>();
        string? method = null, methodType = null;
        var anyHeaderMapping = false;

        foreach (var mapping in mappings)
        {
            var value = mapping.Field is not null ? Lookup(mapping.Field, order, context) : mapping.Static ?? "";
            if (IsHeader(mapping.ExportName, out var headerName))
            {
                anyHeaderMapping = true;
                if (headerName.Equals(MethodControl, StringComparison.OrdinalIgnoreCase))
                {
                    method = value.Trim().ToUpperInvariant();
                }
                else if (headerName.Equals(MethodTypeControl, StringComparison.OrdinalIgnoreCase))
                {
                    methodType = value.Trim().ToUpperInvariant();
                }
                else
                {
                    // Validation refuses these when a profile is saved; this guards a profile
                    // saved before a rule existed, or a request built any other way, from ever
                    // splitting a header or failing inside the sender.
                    if (value.AsSpan().IndexOfAny('\r', '\n') >= 0 || headerName.AsSpan().IndexOfAny('\r', '\n') >= 0)
                    {
                        throw new ArgumentException($"Header {headerName} has a line break in its value.", nameof(mappings));
                    }
                    if (HeaderRules.ValueProblem(value) is { } problem)
                    {
                        throw new UnsendableRequestException($"header:{headerName}: {problem}");
                    }
                    headers.Add(new(headerName, value));
                }
            }
            else
            {
                parameters.Add(new(mapping.ExportName, value));
            }
        }

        // httpMethodType says where the parameters go. Without it, they go in the body when the
        // profile sends real headers (seed 003: "the non-header field mappings are sent in the
        // message body") and in the URL when httpMethod is the only header (seed 003: GET is the
        // default for httpMethodType).
        var finalMethod = method ?? (anyHeaderMapping ? "POST" : "GET");
        var parametersInBody = methodType switch
        {
            "POST" => true,
            "GET" => false,
            _ => headers.Count > 0,
        };

        var url = postbackUrl;
        string? body = null;
        if (parametersInBody)
        {
            var contentType = headers.FirstOrDefault(h => h.Key.Equals("Content-Type", StringComparison.OrdinalIgnoreCase)).Value;
            if (IsJson(contentType))
            {
                body = JsonBody(parameters);
            }
            else
            {
                body = Encode(parameters);
                if (contentType is null)
                {
                    headers.Add(new("Content-Type", FormContentType));
                }
            }
        }
        else if (parameters.Count > 0)
        {
            url = postbackUrl + "?" + Encode(parameters);
        }

        return new RenderedRequest(finalMethod, url, headers, body);
    }

    /// The value of a merge tag for an order; a tag the order has no data for renders as "".
    public static string Lookup(string field, OrderData order, RenderContext context)
    {
        var tag = FieldCatalog.NormalizeTag(field);
        if (FieldCatalog.TryParseProductTag(tag, out var line, out var suffix))
        {
            if (line > order.Items.Count)
            {
                return "";
            }
            var item = order.Items[line - 1];
            return suffix switch
            {
                "id" => item.ProductId ?? "",
                "sku" => item.Sku ?? "",
                "name" => item.Name ?? "",
                "qty" => item.Qty.ToString(CultureInfo.InvariantCulture),
                "price" => item.Price is { } price ? OrderParser.FormatMoney(price) : "",
                _ => "",
            };
        }
        if (tag.Equals("customerType", StringComparison.OrdinalIgnoreCase))
        {
            return context.CustomerType;
        }
        if (tag.Equals("orderDate", StringComparison.OrdinalIgnoreCase))
        {
            return order.Get("dateCreated") ?? "";
        }
        if (tag.Equals("campaignName", StringComparison.OrdinalIgnoreCase))
        {
            return order.Get("campaignName") ?? context.CampaignName ?? "";
        }
        if (tag.Equals("productCount", StringComparison.OrdinalIgnoreCase))
        {
            return order.Items.Count.ToString(CultureInfo.InvariantCulture);
        }
        return order.Get(tag) ?? "";
    }

    public static bool IsJson(string? contentType) =>
        contentType is not null
        && contentType.Split(';', 2)[0].Trim().Equals("application/json", StringComparison.OrdinalIgnoreCase);

    /// RFC 3986 percent-encoding of names and values (a space is %20), pairs joined with &.
    public static string Encode(IEnumerable<KeyValuePair<string, string>> pairs)
    {
        var sb = new StringBuilder();
        foreach (var (name, value) in pairs)
        {
            if (sb.Length > 0)
            {
                sb.Append('&');
            }
            sb.Append(Uri.EscapeDataString(name)).Append('=').Append(Uri.EscapeDataString(value));
        }
        return sb.ToString();
    }

    private static string JsonBody(List<KeyValuePair<string, string>> parameters)
    {
        using var stream = new MemoryStream();
        // Receivers read UTF-8; escaping every non-ASCII letter would only obscure names like José.
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            foreach (var (name, value) in parameters)
            {
                writer.WriteString(name, value);
            }
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
