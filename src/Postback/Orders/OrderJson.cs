using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Postback.Fields;

namespace Postback.Orders;

/// The stored form of an order (StoredOrder.Data) and the API form of it.
public static class OrderJson
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    private sealed record Stored(Dictionary<string, string> Fields, List<OrderItem> Items);

    public static string Serialize(OrderData order) =>
        JsonSerializer.Serialize(new Stored(new Dictionary<string, string>(order.Fields), [.. order.Items]), Options);

    public static OrderData Deserialize(string json)
    {
        var stored = JsonSerializer.Deserialize<Stored>(json, Options) ?? throw new InvalidDataException("An order's data is empty.");
        var fields = new Dictionary<string, string>(stored.Fields, StringComparer.OrdinalIgnoreCase);
        return new OrderData
        {
            OrderId = long.Parse(fields["orderId"], CultureInfo.InvariantCulture),
            Fields = fields,
            Items = stored.Items,
        };
    }

    /// A newer postback of the same order: the fields it carries replace the stored ones, the
    /// fields it leaves out keep their value, and its items (if any) replace the stored items.
    public static OrderData Merge(OrderData stored, OrderData incoming)
    {
        var fields = new Dictionary<string, string>(stored.Fields, StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in incoming.Fields)
        {
            fields[key] = value;
        }
        return new OrderData
        {
            OrderId = stored.OrderId,
            Fields = fields,
            Items = incoming.Items.Count > 0 ? incoming.Items : stored.Items,
        };
    }

    /// The order as the API shows it: CRM field names, typed values, then its items.
    public static JsonObject ToApi(OrderData order)
    {
        var result = new JsonObject();
        foreach (var definition in FieldCatalog.OrderFields)
        {
            if (order.Fields.TryGetValue(definition.Name, out var value))
            {
                result[definition.Name] = Typed(definition.Kind, value);
            }
        }
        foreach (var (key, value) in order.Fields.OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            if (!FieldCatalog.IsStoredField(key))
            {
                result[key] = value;
            }
        }
        result["isTestCard"] = order.IsTestCard;
        var items = new JsonArray();
        foreach (var item in order.Items)
        {
            items.Add(new JsonObject
            {
                ["productId"] = item.ProductId,
                ["sku"] = item.Sku,
                ["name"] = item.Name,
                ["qty"] = item.Qty,
                ["price"] = item.Price,
                ["recurring"] = item.Recurring,
            });
        }
        result["items"] = items;
        return result;
    }

    private static JsonNode? Typed(FieldKind kind, string value) => kind switch
    {
        FieldKind.Identifier => long.Parse(value, CultureInfo.InvariantCulture),
        FieldKind.Money or FieldKind.Number => decimal.Parse(value, CultureInfo.InvariantCulture),
        FieldKind.Boolean => value == "1",
        _ => value,
    };
}
