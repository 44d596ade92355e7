using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Postback.Fields;

namespace Postback.Orders;

/// The stored form of an order (StoredOrder.Data) and the API form of it.
public static class OrderJson
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    private sealed record Stored(Dictionary<string, string> Fields, List<OrderItem> Items);

    /// Written by hand rather than by the reflection-based serializer (once per event on the
    /// ingest path), to exactly what it wrote: {"fields":{...},"items":[{productId, sku, name,
    /// qty, price, recurring}]} with the same escaping; Deserialize reads both.
    public static string Serialize(OrderData order)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartObject("fields");
            foreach (var (key, value) in order.Fields)
            {
                w.WriteString(key, value);
            }
            w.WriteEndObject();
            w.WriteStartArray("items");
            foreach (var item in order.Items)
            {
                w.WriteStartObject();
                WriteStringOrNull(w, "productId", item.ProductId);
                WriteStringOrNull(w, "sku", item.Sku);
                WriteStringOrNull(w, "name", item.Name);
                w.WriteNumber("qty", item.Qty);
                if (item.Price is { } price)
                {
                    w.WriteNumber("price", price);
                }
                else
                {
                    w.WriteNull("price");
                }
                w.WriteBoolean("recurring", item.Recurring);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteStringOrNull(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null)
        {
            w.WriteNull(name);
        }
        else
        {
            w.WriteString(name, value);
        }
    }

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
