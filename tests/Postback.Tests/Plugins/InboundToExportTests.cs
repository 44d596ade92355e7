using System.Net;
using Postback.Tests.Support;
using static Postback.Tests.Support.Json;

namespace Postback.Tests.Plugins;

/// The whole path: a Konnektive-style form postback comes in through a plugin instance, becomes
/// an order event, and an export profile sends it on as a call center's GET postback to a real
/// receiver on 127.0.0.1.
public sealed class InboundToExportTests
{
    private static readonly Dictionary<string, string?> FastDispatch = new()
    {
        ["Postback:Delivery:PollMilliseconds"] = "50",
    };

    [Theory]
    [InlineData(StorageKind.Sqlite)]
    [InlineData(StorageKind.Postgres)]
    public async Task A_Konnektive_partial_postback_reaches_the_call_center_as_a_GET_postback(StorageKind storage)
    {
        await using var receiver = await Receiver.StartAsync();
        await using var hub = await HubFactory.StartAsync(storage, allowPrivateNetworks: true, dispatch: true, settings: FastDispatch);
        using var api = hub.Api();

        await ReadOkAsync(await api.PostJsonAsync("/api/v1/campaigns", new
        {
            campaignId = "259",
            name = "Test Lander",
            products = new[] { new { productId = "P-KIT", sku = "KIT-1", name = "Starter kit", price = 49.95m } },
        }), HttpStatusCode.Created);
        var profile = await ReadOkAsync(await api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "Call center partials",
            postbackUrl = receiver.Url("/partials.php"),
            exportDelayMinutes = 0,
            mappings = new object[]
            {
                new { exportName = "first_name", field = "firstName" },
                new { exportName = "phone", field = "phoneNumber" },
                new { exportName = "type", field = "customerType" },
                new { exportName = "sku", field = "product1_sku" },
                new { exportName = "list_id", @static = "400" },
            },
            // A partial with products is an abandoned cart (PRODUCT.md section 2).
            routes = new[] { new { customerTypes = new[] { "abandoned_cart" }, campaignIds = new[] { "259" }, productIds = Array.Empty<string>() } },
        }), HttpStatusCode.Created);

        var instance = await ReadOkAsync(await api.PostJsonAsync("/api/v1/plugin-instances", new
        {
            name = "Konnektive",
            kind = "konnektive",
            campaignId = "259",
        }), HttpStatusCode.Created);
        var mapping = instance["setup"]!["fieldMapping"]!.AsObject();
        var postbackUrl = instance["setup"]!["postbackUrl"]!.GetValue<string>();
        Assert.DoesNotContain('?', postbackUrl);

        // What Konnektive sends: the operator's field mapping with the merge tags filled in.
        var values = new Dictionary<string, string>
        {
            ["[orderId]"] = "880001", ["[firstName]"] = "Jane", ["[lastName]"] = "Doe", ["[phoneNumber]"] = "5551234567",
            ["[customerType]"] = "PARTIAL", ["[orderStatus]"] = "PARTIAL", ["[product1_sku]"] = "KIT-1", ["[product1_qty]"] = "1",
            ["[product1_price]"] = "49.95", ["[product1_name]"] = "Starter kit", ["[emailAddress]"] = "jane@example.com",
        };
        var form = mapping.ToDictionary(
            m => m.Key,
            m => m.Value!.GetValue<string>() is var v && v.StartsWith('[') ? values.GetValueOrDefault(v, "") : m.Value!.GetValue<string>());
        using var crm = hub.Api(key: null);
        var accepted = await ReadOkAsync(await crm.PostAsync(new Uri(postbackUrl).PathAndQuery, new FormUrlEncodedContent(form)));
        Assert.Equal("partial", accepted["customerType"]!.GetValue<string>());
        var delivery = Assert.Single(accepted["deliveries"]!.AsArray())!;
        Assert.Equal(profile["id"]!.GetValue<long>(), delivery["profileId"]!.GetValue<long>());

        await DeliveryScenario.WaitUntilAsync(() => receiver.Received.Count > 0, TimeSpan.FromSeconds(30),
            () => "the call center never received the postback", 25);
        var sent = Assert.Single(receiver.Received);
        Assert.Equal("GET", sent.Method);
        Assert.Equal("/partials.php", sent.Path);
        Assert.Equal("?first_name=Jane&phone=5551234567&type=abandoned_cart&sku=KIT-1&list_id=400", sent.RawQuery);

        // Konnektive sending the same postback again changes nothing downstream.
        var repeat = await ReadOkAsync(await crm.PostAsync(new Uri(postbackUrl).PathAndQuery, new FormUrlEncodedContent(form)));
        Assert.True(repeat["duplicate"]!.GetValue<bool>());
        var deliveries = await ReadOkAsync(await api.GetAsync("/api/v1/deliveries?orderId=880001"));
        Assert.Single(deliveries["items"]!.AsArray());
    }
}
