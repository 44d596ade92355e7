using System.Text.RegularExpressions;

namespace Postback.Fields;

public enum FieldKind
{
    Text,
    Identifier,
    Number,
    Money,
    Boolean,
    DateTime,
    Email,
    Currency,
}

/// A merge tag the renderer knows. Stored fields come from the order; derived ones are computed
/// when a request is rendered (they are refused as order input, so the CRM cannot shadow them).
public sealed record FieldDefinition(string Name, FieldKind Kind, int MaxLength, string Group, string Meaning, bool Derived = false);

public static partial class FieldCatalog
{
    public const int MaxProductLines = 100;

    // Konnektive / CheckoutChamp names. Order matters: it is the order the catalog is listed in.
    public static readonly IReadOnlyList<FieldDefinition> OrderFields =
    [
        new("orderId", FieldKind.Identifier, 19, "order", "The CRM's numeric order id."),
        new("customerId", FieldKind.Text, 64, "order", "The CRM's customer id."),
        new("orderStatus", FieldKind.Text, 32, "order", "Order status as the CRM reports it (COMPLETE, PARTIAL, DECLINED, REFUNDED, ...)."),
        new("orderType", FieldKind.Text, 32, "order", "Order type as the CRM reports it (NEW_SALE, UPSELL, RECURRING, ...)."),
        new("dateCreated", FieldKind.DateTime, 19, "order", "When the order was created, yyyy-MM-dd HH:mm:ss."),
        new("dateUpdated", FieldKind.DateTime, 19, "order", "When the order last changed, yyyy-MM-dd HH:mm:ss."),
        new("isTestCard", FieldKind.Boolean, 1, "order", "1 when the order was placed with a test card (such orders never export), else 0."),
        new("ipAddress", FieldKind.Text, 45, "order", "The customer's IP address."),
        new("campaignId", FieldKind.Text, 64, "campaign", "The CRM campaign id."),
        new("firstName", FieldKind.Text, 100, "customer", "Customer first name (billing)."),
        new("lastName", FieldKind.Text, 100, "customer", "Customer last name (billing)."),
        new("emailAddress", FieldKind.Email, 254, "customer", "Customer e-mail address."),
        new("phoneNumber", FieldKind.Text, 32, "customer", "Customer phone number."),
        new("address1", FieldKind.Text, 255, "billing", "Billing street address, line 1."),
        new("address2", FieldKind.Text, 255, "billing", "Billing street address, line 2."),
        new("city", FieldKind.Text, 100, "billing", "Billing city."),
        new("state", FieldKind.Text, 64, "billing", "Billing state or province."),
        new("postalCode", FieldKind.Text, 20, "billing", "Billing postal code."),
        new("country", FieldKind.Text, 64, "billing", "Billing country (ISO code as the CRM sends it)."),
        new("shipFirstName", FieldKind.Text, 100, "shipping", "Shipping first name."),
        new("shipLastName", FieldKind.Text, 100, "shipping", "Shipping last name."),
        new("shipAddress1", FieldKind.Text, 255, "shipping", "Shipping street address, line 1."),
        new("shipAddress2", FieldKind.Text, 255, "shipping", "Shipping street address, line 2."),
        new("shipCity", FieldKind.Text, 100, "shipping", "Shipping city."),
        new("shipState", FieldKind.Text, 64, "shipping", "Shipping state or province."),
        new("shipPostalCode", FieldKind.Text, 20, "shipping", "Shipping postal code."),
        new("shipCountry", FieldKind.Text, 64, "shipping", "Shipping country."),
        new("totalAmount", FieldKind.Money, 20, "totals", "Order total charged."),
        new("subTotal", FieldKind.Money, 20, "totals", "Sum of the line items before shipping, tax and discounts."),
        new("shippingAmount", FieldKind.Money, 20, "totals", "Shipping charged."),
        new("salesTaxAmount", FieldKind.Money, 20, "totals", "Sales tax charged."),
        new("discountAmount", FieldKind.Money, 20, "totals", "Discount applied."),
        new("currencyCode", FieldKind.Currency, 3, "totals", "ISO 4217 currency code, e.g. USD."),
        new("affId", FieldKind.Text, 100, "marketing", "Affiliate id."),
        new("sourceValue1", FieldKind.Text, 255, "marketing", "Source value 1 (sub-id) passed on the order."),
        new("sourceValue2", FieldKind.Text, 255, "marketing", "Source value 2."),
        new("sourceValue3", FieldKind.Text, 255, "marketing", "Source value 3."),
        new("sourceValue4", FieldKind.Text, 255, "marketing", "Source value 4."),
        new("sourceValue5", FieldKind.Text, 255, "marketing", "Source value 5."),
    ];

    public static readonly IReadOnlyList<FieldDefinition> DerivedFields =
    [
        new("orderDate", FieldKind.DateTime, 19, "order", "The order date: dateCreated, yyyy-MM-dd HH:mm:ss.", Derived: true),
        new("customerType", FieldKind.Text, 32, "event", "The customer type of the route that fired, e.g. partial, new_sale, abandoned_cart.", Derived: true),
        new("campaignName", FieldKind.Text, 200, "campaign", "The campaign's name from the catalog.", Derived: true),
        new("productCount", FieldKind.Number, 3, "line items", "How many line items the order has.", Derived: true),
    ];

    // productN_* tags: N is the 1-based line number.
    public static readonly IReadOnlyList<(string Suffix, string Meaning)> ProductLineFields =
    [
        ("id", "Product id of line N (empty when the SKU is not linked to a product)."),
        ("sku", "SKU of line N."),
        ("name", "Product name of line N."),
        ("qty", "Quantity of line N."),
        ("price", "Unit price of line N."),
    ];

    private static readonly Dictionary<string, FieldDefinition> ByName =
        OrderFields.Concat(DerivedFields).ToDictionary(f => f.Name, StringComparer.OrdinalIgnoreCase);

    public static FieldDefinition? Find(string name) => ByName.GetValueOrDefault(name);

    public static bool IsStoredField(string name) => ByName.TryGetValue(name, out var f) && !f.Derived;

    public static bool IsDerivedField(string name) => ByName.TryGetValue(name, out var f) && f.Derived;

    /// Any name an extra order field may have: a letter, then letters, digits or underscores.
    public static bool IsValidFieldName(string name) => FieldNamePattern().IsMatch(name);

    public static bool TryParseProductTag(string tag, out int line, out string suffix)
    {
        var m = ProductTagPattern().Match(tag);
        if (m.Success && int.TryParse(m.Groups[1].ValueSpan, out line) && line >= 1)
        {
            suffix = m.Groups[2].Value.ToLowerInvariant();
            return true;
        }
        line = 0;
        suffix = "";
        return false;
    }

    /// "[firstName]" and "firstName" name the same merge tag.
    public static string NormalizeTag(string tag)
    {
        var t = tag.Trim();
        return t.Length >= 2 && t[0] == '[' && t[^1] == ']' ? t[1..^1].Trim() : t;
    }

    [GeneratedRegex("^[A-Za-z][A-Za-z0-9_]{0,63}$")]
    private static partial Regex FieldNamePattern();

    [GeneratedRegex("^product([0-9]{1,3})_(id|sku|name|qty|price)$", RegexOptions.IgnoreCase)]
    private static partial Regex ProductTagPattern();
}
