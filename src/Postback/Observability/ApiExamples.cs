using System.Text.Json.Nodes;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Postback.Observability;

/// Examples in the OpenAPI document, in the CRMs' own field names (PRODUCT.md's order fields),
/// so the reference shows a request a CRM integration would really send.
internal static class ApiExamples
{
    public static JsonObject Order() => new()
    {
        ["orderId"] = 1042,
        ["customerId"] = "77",
        ["campaignId"] = "259",
        ["dateCreated"] = "2026-03-01 10:15:00",
        ["orderStatus"] = "COMPLETE",
        ["orderType"] = "NEW_SALE",
        ["totalAmount"] = 49.95,
        ["currencyCode"] = "USD",
        ["isTestCard"] = false,
        ["firstName"] = "Ada",
        ["lastName"] = "Lovelace",
        ["emailAddress"] = "ada@example.com",
        ["phoneNumber"] = "+15555550100",
        ["address1"] = "12 Analytical Row",
        ["city"] = "Austin",
        ["state"] = "TX",
        ["postalCode"] = "78701",
        ["country"] = "US",
        ["items"] = new JsonArray(new JsonObject
        {
            ["productId"] = "1001",
            ["sku"] = "SERUM-30",
            ["name"] = "Serum 30 ml",
            ["qty"] = 1,
            ["price"] = 49.95,
            ["recurring"] = false,
        }),
    };

    public static JsonObject Event() => new()
    {
        ["eventId"] = "crm-1042-new-sale",
        ["type"] = "new_sale",
        ["occurredAt"] = "2026-03-01T10:15:02Z",
        ["order"] = Order(),
    };

    public static Task ApplyAsync(OpenApiSchema schema, OpenApiSchemaTransformerContext context, CancellationToken ct)
    {
        var type = context.JsonTypeInfo.Type;
        if (type == typeof(Orders.EventRequest))
        {
            schema.Examples = [Event()];
        }
        else if (type == typeof(Orders.BatchRequest))
        {
            schema.Examples = [new JsonObject { ["events"] = new JsonArray(Event()) }];
        }
        else if (type == typeof(Orders.OrderRequest))
        {
            schema.Examples = [Order()];
        }
        else if (type == typeof(ExportProfiles.KonnektiveMappingRequest))
        {
            schema.Examples = [new JsonObject { ["first_name"] = "[firstName]", ["email"] = "[emailAddress]", ["list_id"] = "400" }];
        }
        else if (type == typeof(Plugins.CrmPostbackRequest))
        {
            schema.Examples = [new JsonObject
            {
                ["pluginInstanceId"] = "3", ["secret"] = "…", ["orderId"] = "1042", ["customerId"] = "77", ["campaignId"] = "259",
                ["orderStatus"] = "COMPLETE", ["emailAddress"] = "ada@example.com", ["firstName"] = "Ada", ["totalAmount"] = "49.95",
                ["product1_id"] = "1001", ["product1_sku"] = "SERUM-30", ["product1_qty"] = "1", ["product1_price"] = "49.95",
            }];
        }
        else if (type == typeof(System.Text.Json.JsonElement))
        {
            // Only an order given inline to preview or test a profile is a JsonElement in the API's
            // types (bodies read as JsonElement are documented by DocumentedBodyAttribute).
            schema.Type = JsonSchemaType.Object;
            schema.Description = "An order in the CRM's field names, as in POST /api/v1/events (instead of orderId).";
            schema.Examples = [Order()];
        }
        return Task.CompletedTask;
    }
}
