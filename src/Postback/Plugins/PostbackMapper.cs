using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Postback.Fields;
using Postback.Infrastructure;
using Postback.Orders;

namespace Postback.Plugins;

/// Turns the flat fields of a CRM postback (Konnektive's field mapping, CheckoutChamp's URL
/// parameters) into an order event: productN_* fields become line items, CRM spellings of the
/// customer type become ours, CRM amount and date formats become canonical, and every field is
/// then validated exactly as the events API validates an order (OrderParser).
public static partial class PostbackMapper
{
    // Fields that address the postback, not the order: never stored on the order.
    public static readonly IReadOnlySet<string> ControlKeys =
        new HashSet<string>(["organizationId", "pluginInstanceId", "secret", "customerType"], StringComparer.OrdinalIgnoreCase);

    public sealed record Result(
        IncomingEvent? Event,
        ValidationErrors Errors,
        IReadOnlyList<string> IgnoredFields,
        IReadOnlyList<string> StrippedFields);

    public static Result Map(IReadOnlyDictionary<string, string> fields, long pluginInstanceId, string? campaignId, DateTimeOffset receivedAt)
    {
        var errors = new ValidationErrors();
        var ignored = new List<string>();
        var order = new JsonObject();
        var lines = new SortedDictionary<int, Dictionary<string, (string Key, string Value)>>();
        var stripped = new List<string>();

        foreach (var (key, value) in fields)
        {
            if (ControlKeys.Contains(key))
            {
                continue;
            }
            // By value, under the CRM's own field name (product1_sku rather than items[0].sku);
            // by name, OrderParser drops them below.
            if (!key.Equals("orderId", StringComparison.OrdinalIgnoreCase) && CardData.LooksLikeCardNumber(value))
            {
                stripped.Add(key);
                continue;
            }
            var product = ProductField().Match(key);
            if (product.Success)
            {
                if (!int.TryParse(product.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1)
                {
                    errors.Add(key, "the line number must be from 1 up");
                    continue;
                }
                if (!lines.TryGetValue(n, out var line))
                {
                    lines[n] = line = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
                }
                line[product.Groups[2].Value.ToLowerInvariant()] = (key, value);
                continue;
            }
            if (!FieldCatalog.IsValidFieldName(key) && !OrderParser.IsCardData(key))
            {
                // A CRM sends whatever the operator mapped; a name we could never use as a merge
                // tag is left out (and listed in the answer) rather than refusing the order.
                ignored.Add(key);
                continue;
            }
            if (FieldCatalog.IsDerivedField(key))
            {
                // Postback computes these; a CRM's orderDate is its creation date.
                if (key.Equals("orderDate", StringComparison.OrdinalIgnoreCase) && !fields.ContainsKey("dateCreated"))
                {
                    order["dateCreated"] = Canonical(FieldKind.DateTime, value);
                }
                else
                {
                    ignored.Add(key);
                }
                continue;
            }
            order[key] = Canonical(FieldCatalog.Find(key)?.Kind, value);
        }

        // Konnektive sends every mapped productN_ field, empty when the order has fewer lines.
        foreach (var n in lines.Where(l => l.Value.Values.All(v => string.IsNullOrWhiteSpace(v.Value))).Select(l => l.Key).ToList())
        {
            lines.Remove(n);
        }
        if (lines.Count > FieldCatalog.MaxProductLines)
        {
            errors.Add("products", $"an order holds at most {FieldCatalog.MaxProductLines} product lines; this postback has {lines.Count}");
        }

        var lineNumbers = new List<int>();
        var items = new JsonArray();
        if (lines.Count <= FieldCatalog.MaxProductLines)
        {
            foreach (var (n, line) in lines)
            {
                var item = new JsonObject();
                foreach (var (suffix, (_, value)) in line)
                {
                    var name = suffix switch { "id" => "productId", "qty" => "qty", "price" => "price", "name" => "name", _ => "sku" };
                    var text = value.Trim();
                    if (text.Length == 0)
                    {
                        continue;
                    }
                    item[name] = suffix switch
                    {
                        "price" => Canonical(FieldKind.Money, text),
                        "qty" => WholeQuantity(text),
                        _ => text,
                    };
                }
                items.Add(item);
                lineNumbers.Add(n);
            }
        }
        order["items"] = items;
        if (campaignId is not null && !order.Any(p => p.Key.Equals("campaignId", StringComparison.OrdinalIgnoreCase) && p.Value?.GetValue<string>().Trim().Length > 0))
        {
            order["campaignId"] = campaignId;
        }

        var type = CustomerType(fields, errors);

        using var document = JsonDocument.Parse(order.ToJsonString());
        var parsed = OrderParser.Parse(document.RootElement);
        foreach (var (field, reasons) in parsed.Errors.ToDictionary())
        {
            foreach (var reason in reasons)
            {
                errors.Add(FieldName(field, lineNumbers, lines), reason);
            }
        }
        stripped.AddRange(parsed.StrippedFields);
        if (errors.Any || parsed.Order is null || type is null)
        {
            return new Result(null, errors, ignored, stripped);
        }
        var data = parsed.Order;
        var incoming = new IncomingEvent(EventId(pluginInstanceId, type, data), type, receivedAt, data);
        return new Result(incoming, errors, ignored, stripped);
    }

    private static string? CustomerType(IReadOnlyDictionary<string, string> fields, ValidationErrors errors)
    {
        if (fields.TryGetValue("customerType", out var given) && !string.IsNullOrWhiteSpace(given))
        {
            var type = CrmCustomerTypes.Resolve(given);
            if (type is null)
            {
                errors.Add("customerType", $"'{Shorten(given)}' is not a customer type Postback knows; use one of {CustomerTypes.ListForErrors} (CRM spellings such as NEW_SALE, New Sale or Partial are accepted)");
            }
            return type;
        }
        if (fields.TryGetValue("orderStatus", out var status) && CrmCustomerTypes.FromOrderStatus(status) is { } fromStatus)
        {
            return fromStatus;
        }
        errors.Add("customerType", "is required (or an orderStatus such as PARTIAL, COMPLETE, DECLINED or REFUNDED that implies it)");
        return null;
    }

    /// The event id is what makes a repeated postback harmless: the same instance, order,
    /// customer type and order content always give the same id, and the ingest stores an id
    /// once. A postback that changes the order (a new address, another status) is a new event.
    public static string EventId(long pluginInstanceId, string type, OrderData order)
    {
        var canonical = new StringBuilder();
        foreach (var (key, value) in order.Fields.OrderBy(f => f.Key.ToLowerInvariant(), StringComparer.Ordinal))
        {
            canonical.Append(key.ToLowerInvariant()).Append('=').Append(value).Append('\n');
        }
        foreach (var item in order.Items)
        {
            canonical.Append("item=").Append(JsonSerializer.Serialize(item)).Append('\n');
        }
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical.ToString())))[..16];
        return $"pi{pluginInstanceId}-{order.OrderIdText}-{type}-{hash}";
    }

    // items[3].qty → product4_qty: errors name the field as the CRM sent it.
    private static string FieldName(string field, List<int> lineNumbers, SortedDictionary<int, Dictionary<string, (string Key, string Value)>> lines)
    {
        var m = ItemPath().Match(field);
        if (!m.Success)
        {
            return field;
        }
        var n = lineNumbers[int.Parse(m.Groups[1].ValueSpan, CultureInfo.InvariantCulture)];
        var suffix = m.Groups[2].Success
            ? m.Groups[2].Value switch { "productId" => "id", var s => s.ToLowerInvariant() }
            : "sku";
        return lines[n].TryGetValue(suffix, out var sent) ? sent.Key : $"product{n}_{suffix}";
    }

    // CRM amounts may carry a dollar sign or thousands separators ("$1,049.95").
    private static string Canonical(FieldKind? kind, string value)
    {
        var text = value.Trim();
        if (kind == FieldKind.Money && CrmAmount().IsMatch(text))
        {
            return text.Replace("$", "", StringComparison.Ordinal).Replace(",", "", StringComparison.Ordinal);
        }
        if (kind == FieldKind.DateTime
            && DateTime.TryParseExact(text, CrmDateFormats, CultureInfo.InvariantCulture, DateTimeStyles.None, out var date))
        {
            return date.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
        }
        return text;
    }

    // "2", "2.0" and "2.00" are one quantity; anything else goes to the parser as sent and is refused there.
    private static string WholeQuantity(string text) =>
        decimal.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var q) && q == decimal.Truncate(q) && q <= int.MaxValue
            ? decimal.ToInt32(q).ToString(CultureInfo.InvariantCulture)
            : text;

    private static readonly string[] CrmDateFormats =
    [
        "MM/dd/yyyy hh:mm:ss tt", "M/d/yyyy h:mm:ss tt", "MM/dd/yyyy hh:mm tt", "M/d/yyyy h:mm tt", "M/d/yyyy H:mm:ss", "M/d/yyyy",
    ];

    /// At most <paramref name="max"/> characters and an ellipsis, never cutting a surrogate pair
    /// in half: a lone surrogate in an error would make PostgreSQL refuse the inbound log entry.
    public static string Shorten(string s, int max = 40)
    {
        if (s.Length <= max)
        {
            return s;
        }
        var cut = char.IsHighSurrogate(s[max - 1]) ? max - 1 : max;
        return s[..cut] + "…";
    }

    [GeneratedRegex("^product([0-9]{1,6})_(sku|qty|price|name|id)$", RegexOptions.IgnoreCase)]
    private static partial Regex ProductField();

    [GeneratedRegex(@"^items\[([0-9]+)\](?:\.(productId|sku|name|qty|price|recurring))?$")]
    private static partial Regex ItemPath();

    [GeneratedRegex(@"^-?\$?[0-9]{1,3}(,[0-9]{3})*(\.[0-9]+)?$|^-?\$[0-9]+(\.[0-9]+)?$")]
    private static partial Regex CrmAmount();
}
