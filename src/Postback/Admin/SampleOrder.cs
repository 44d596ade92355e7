using System.Text.Json;
using System.Text.Json.Nodes;
using Postback.ExportProfiles;
using Postback.Storage;

namespace Postback.Admin;

/// The order a preview uses when the operator names none: the seeds' Jane Doe, in a campaign
/// and with a product the profile routes, so the preview shows the request that would fire.
public static class SampleOrder
{
    public static JsonElement For(ExportProfile profile)
    {
        var route = profile.Routes.FirstOrDefault();
        var order = new JsonObject
        {
            ["orderId"] = 6908,
            ["customerId"] = "4411",
            ["orderStatus"] = "COMPLETE",
            ["dateCreated"] = "2024-07-31 16:24:58",
            ["campaignId"] = route?.CampaignIds?.FirstOrDefault() ?? "259",
            ["firstName"] = "Jane",
            ["lastName"] = "Doe",
            ["emailAddress"] = "jane@example.com",
            ["phoneNumber"] = "5555550123",
            ["address1"] = "1 Main St",
            ["city"] = "Springfield",
            ["state"] = "IL",
            ["postalCode"] = "62701",
            ["country"] = "US",
            ["totalAmount"] = "49.90",
            ["currencyCode"] = "USD",
            ["items"] = new JsonArray(new JsonObject
            {
                ["productId"] = route?.ProductIds?.FirstOrDefault() ?? "12",
                ["sku"] = "TRIAL-1",
                ["name"] = "Trial bottle",
                ["qty"] = 1,
                ["price"] = "49.90",
            }),
        };
        return JsonSerializer.SerializeToElement(order);
    }
}
