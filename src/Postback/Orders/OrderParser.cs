using System.Globalization;
using System.Net.Mail;
using System.Text.Json;
using Postback.Fields;
using Postback.Infrastructure;

namespace Postback.Orders;

/// Turns an order as a client sends it (CRM field names, loosely typed values) into an
/// <see cref="OrderData"/>, or into errors naming each bad field. Card data is dropped here,
/// before anything is stored: a card number must never reach the database or an export.
public static class OrderParser
{
    public const int MaxExtraFields = 100;
    public const int MaxExtraValueLength = 1000;
    public const int MaxQuantity = 100_000;
    private const decimal MaxAmount = 1_000_000_000m;

    private static readonly string[] ItemKeys = ["productId", "sku", "name", "qty", "price", "recurring"];

    public sealed record Result(OrderData? Order, ValidationErrors Errors, IReadOnlyList<string> StrippedFields);

    public static Result Parse(JsonElement json)
    {
        var errors = new ValidationErrors();
        var stripped = new List<string>();
        if (json.ValueKind != JsonValueKind.Object)
        {
            errors.Add("", "must be a JSON object");
            return new Result(null, errors, stripped);
        }

        var fields = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var items = new List<OrderItem>();
        var extras = 0;
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var property in json.EnumerateObject())
        {
            var key = property.Name;
            // Read once: the card check and the field's value both need the text.
            var isScalar = TryScalarText(property.Value, out var raw, out var notScalar);
            if (IsCardData(key) || (!key.Equals("orderId", StringComparison.OrdinalIgnoreCase) && IsCardValue(property.Value, isScalar, raw)))
            {
                stripped.Add(key);
                continue;
            }
            var known = FieldCatalog.Find(key);
            if (!seen.Add(known?.Name ?? key))
            {
                errors.Add(key, "is given more than once");
                continue;
            }
            if (key.Equals("items", StringComparison.OrdinalIgnoreCase))
            {
                ParseItems(property.Value, items, errors, stripped);
                continue;
            }
            if (property.Value.ValueKind == JsonValueKind.Null)
            {
                continue;
            }

            if (known is { Derived: true })
            {
                errors.Add(key, $"is computed by Postback and cannot be sent{(key.Equals("orderDate", StringComparison.OrdinalIgnoreCase) ? "; send dateCreated" : "")}");
                continue;
            }
            if (known is null)
            {
                if (FieldCatalog.TryParseProductTag(key, out _, out _))
                {
                    errors.Add(key, "line items go in items[], not in productN_ fields");
                    continue;
                }
                if (!FieldCatalog.IsValidFieldName(key))
                {
                    errors.Add(key, "is not a valid field name (a letter, then letters, digits or underscores, at most 64)");
                    continue;
                }
                if (++extras > MaxExtraFields)
                {
                    errors.Add(key, $"an order holds at most {MaxExtraFields} extra fields");
                    continue;
                }
                known = new FieldDefinition(key, FieldKind.Text, MaxExtraValueLength, "extra", "");
            }

            if (!isScalar)
            {
                errors.Add(known.Name, notScalar);
                continue;
            }
            if (IsJsonBoolean(property.Value) && known.Kind is not (FieldKind.Boolean or FieldKind.Text))
            {
                errors.Add(known.Name, $"must not be true or false; it is a {known.Kind.ToString().ToLowerInvariant()} field");
                continue;
            }
            if (TryNormalize(known, raw, out var value, out var reason))
            {
                if (value.Length > 0)
                {
                    fields[known.Name] = value;
                }
            }
            else
            {
                errors.Add(known.Name, reason);
            }
        }

        long orderId = 0;
        if (!fields.TryGetValue("orderId", out var orderIdText))
        {
            if (!errors.Any || !HasError(errors, "orderId"))
            {
                errors.Add("orderId", "is required");
            }
        }
        else
        {
            orderId = long.Parse(orderIdText, CultureInfo.InvariantCulture);
        }

        if (errors.Any)
        {
            return new Result(null, errors, stripped);
        }
        fields.TryAdd("isTestCard", "0");
        return new Result(new OrderData { OrderId = orderId, Fields = fields, Items = items }, errors, stripped);
    }

    private static bool HasError(ValidationErrors errors, string field) =>
        errors.ToDictionary().ContainsKey(field);

    private static void ParseItems(JsonElement value, List<OrderItem> items, ValidationErrors errors, List<string> stripped)
    {
        if (value.ValueKind == JsonValueKind.Null)
        {
            return;
        }
        if (value.ValueKind != JsonValueKind.Array)
        {
            errors.Add("items", "must be an array of line items");
            return;
        }
        if (value.GetArrayLength() > FieldCatalog.MaxProductLines)
        {
            errors.Add("items", $"an order holds at most {FieldCatalog.MaxProductLines} line items");
            return;
        }
        var index = 0;
        foreach (var element in value.EnumerateArray())
        {
            var path = $"items[{index++}]";
            if (element.ValueKind != JsonValueKind.Object)
            {
                errors.Add(path, "must be an object");
                continue;
            }
            string? productId = null, sku = null, name = null;
            int qty = 1;
            decimal? price = null;
            var recurring = false;
            var ok = true;
            var seenKeys = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in element.EnumerateObject())
            {
                var key = ItemKeys.FirstOrDefault(k => k.Equals(p.Name, StringComparison.OrdinalIgnoreCase));
                var fieldPath = $"{path}.{key ?? p.Name}";
                if (key is null)
                {
                    errors.Add(fieldPath, $"is not a line item field; items take {string.Join(", ", ItemKeys)}");
                    ok = false;
                    continue;
                }
                if (!seenKeys.Add(key))
                {
                    errors.Add(fieldPath, "is given more than once");
                    ok = false;
                    continue;
                }
                if (IsJsonBoolean(p.Value) && key is "qty" or "price")
                {
                    errors.Add(fieldPath, "must be a number, not true or false");
                    ok = false;
                    continue;
                }
                if (p.Value.ValueKind == JsonValueKind.Null)
                {
                    continue;
                }
                var isScalar = TryScalarText(p.Value, out var raw, out var notScalar);
                if (IsCardValue(p.Value, isScalar, raw))
                {
                    stripped.Add(fieldPath);
                    continue;
                }
                if (!isScalar)
                {
                    errors.Add(fieldPath, notScalar);
                    ok = false;
                    continue;
                }
                string? reason = null;
                switch (key)
                {
                    case "productId":
                        productId = NormalizeText(raw, 64, ref reason);
                        break;
                    case "sku":
                        sku = NormalizeText(raw, 64, ref reason);
                        break;
                    case "name":
                        name = NormalizeText(raw, 255, ref reason);
                        break;
                    case "qty":
                        if (!int.TryParse(raw.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out qty) || qty > MaxQuantity)
                        {
                            reason = $"must be a whole number from 0 to {MaxQuantity}";
                        }
                        break;
                    case "price":
                        if (TryParseMoney(raw, out var parsed))
                        {
                            price = parsed;
                        }
                        else
                        {
                            reason = MoneyReason;
                        }
                        break;
                    case "recurring":
                        if (TryParseBool(raw, out var b))
                        {
                            recurring = b;
                        }
                        else
                        {
                            reason = BoolReason;
                        }
                        break;
                }
                if (reason is not null)
                {
                    errors.Add(fieldPath, reason);
                    ok = false;
                }
            }
            if (ok && string.IsNullOrEmpty(productId) && string.IsNullOrEmpty(sku))
            {
                errors.Add(path, "needs a productId or a sku");
                ok = false;
            }
            if (ok)
            {
                items.Add(new OrderItem(NullIfEmpty(productId), NullIfEmpty(sku), NullIfEmpty(name), qty, price, recurring));
            }
        }
    }

    private const string NotScalarReason = "must be a string, number or boolean";
    private const string NotTextReason = "must be valid text; it holds a lone UTF-16 surrogate escape (\\uD800 to \\uDFFF)";
    private const string MoneyReason = "must be a decimal amount such as 49.95";
    private const string BoolReason = "must be true/false or 1/0";

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    private static string NormalizeText(string raw, int maxLength, ref string? reason)
    {
        var text = raw.Trim();
        if (text.Length > maxLength)
        {
            reason = $"must be at most {maxLength} characters";
        }
        else if (text.Any(char.IsControl))
        {
            reason = "must not contain control characters (such as line breaks)";
        }
        return text;
    }

    public static bool TryNormalize(FieldDefinition field, string raw, out string value, out string reason)
    {
        reason = "";
        value = raw.Trim();
        if (value.Length == 0)
        {
            return true;
        }
        switch (field.Kind)
        {
            case FieldKind.Identifier:
                if (value.Length > 19 || !value.All(char.IsAsciiDigit) || !long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var id) || id <= 0)
                {
                    reason = "must be a positive whole number (at most 19 digits)";
                    return false;
                }
                value = id.ToString(CultureInfo.InvariantCulture);
                return true;
            case FieldKind.Money:
                if (!TryParseMoney(value, out var amount))
                {
                    reason = MoneyReason;
                    return false;
                }
                value = FormatMoney(amount);
                return true;
            case FieldKind.Number:
                if (!decimal.TryParse(value, NumberStyles.Number, CultureInfo.InvariantCulture, out var number))
                {
                    reason = "must be a number";
                    return false;
                }
                value = number.ToString(CultureInfo.InvariantCulture);
                return true;
            case FieldKind.Boolean:
                if (!TryParseBool(value, out var flag))
                {
                    reason = BoolReason;
                    return false;
                }
                value = flag ? "1" : "0";
                return true;
            case FieldKind.DateTime:
                if (!TryParseDate(value, out var date))
                {
                    reason = "must be a date and time such as 2024-07-31 16:24:58 or 2024-07-31T16:24:58Z";
                    return false;
                }
                value = date;
                return true;
            case FieldKind.Email:
                if (value.Length > field.MaxLength || !MailAddress.TryCreate(value, out var address) || address.Address != value || value.Any(char.IsWhiteSpace))
                {
                    reason = "must be an e-mail address";
                    return false;
                }
                return true;
            case FieldKind.Currency:
                if (value.Length != 3 || !value.All(char.IsAsciiLetter))
                {
                    reason = "must be a three-letter ISO 4217 currency code such as USD";
                    return false;
                }
                value = value.ToUpperInvariant();
                return true;
            default:
                string? why = null;
                value = NormalizeText(value, field.MaxLength, ref why);
                if (why is not null)
                {
                    reason = why;
                    return false;
                }
                return true;
        }
    }

    public static bool TryParseMoney(string raw, out decimal amount) =>
        decimal.TryParse(raw.Trim(), NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out amount)
        && Math.Abs(amount) < MaxAmount
        && decimal.Round(amount, 4) == amount;

    public static string FormatMoney(decimal amount) => amount.ToString("0.00##", CultureInfo.InvariantCulture);

    public static bool TryParseBool(string raw, out bool value)
    {
        switch (raw.Trim().ToLowerInvariant())
        {
            case "1" or "true" or "yes" or "y":
                value = true;
                return true;
            case "0" or "false" or "no" or "n":
                value = false;
                return true;
            default:
                value = false;
                return false;
        }
    }

    private static readonly string[] LocalDateFormats =
    [
        "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd HH:mm", "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd",
        "yyyy-MM-dd HH:mm:ss.FFFFFFF", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF", "MM/dd/yyyy HH:mm:ss", "MM/dd/yyyy",
    ];

    /// CRM dates carry no offset and are in the CRM account's time zone: those are kept as they
    /// are. A date with an offset or Z is converted to UTC.
    public static bool TryParseDate(string raw, out string canonical)
    {
        canonical = "";
        var text = raw.Trim();
        if (DateTime.TryParseExact(text, LocalDateFormats, CultureInfo.InvariantCulture, DateTimeStyles.None, out var local))
        {
            canonical = local.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
            return true;
        }
        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var withOffset)
            && (text.EndsWith('Z') || text.EndsWith('z') || text.LastIndexOfAny(['+', '-']) > 10))
        {
            canonical = withOffset.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
            return true;
        }
        return false;
    }

    private static bool IsJsonBoolean(JsonElement value) => value.ValueKind is JsonValueKind.True or JsonValueKind.False;

    private static bool TryScalarText(JsonElement value, out string text, out string reason)
    {
        reason = NotScalarReason;
        switch (value.ValueKind)
        {
            case JsonValueKind.String:
                try
                {
                    text = value.GetString()!;
                    return true;
                }
                catch (InvalidOperationException)
                {
                    // A lone surrogate escape such as \ud800: valid JSON, but not text.
                    text = "";
                    reason = NotTextReason;
                    return false;
                }
            case JsonValueKind.Number:
                text = value.GetRawText();
                return true;
            case JsonValueKind.True:
                text = "1";
                return true;
            case JsonValueKind.False:
                text = "0";
                return true;
            default:
                text = "";
                return false;
        }
    }

    /// Card numbers, security codes and similar are never stored (CardData states the rules).
    public static bool IsCardData(string key) => CardData.IsCardName(key);

    // A string or number (never true/false) whose text, already read, looks like a card number.
    private static bool IsCardValue(JsonElement value, bool isScalar, string text) =>
        value.ValueKind is JsonValueKind.String or JsonValueKind.Number && isScalar && CardData.LooksLikeCardNumber(text);
}
