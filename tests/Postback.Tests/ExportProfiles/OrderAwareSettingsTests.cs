using System.Net;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Postback.ExportProfiles;
using Postback.Tests.Support;
using static Postback.Tests.Support.Json;

namespace Postback.Tests.ExportProfiles;

/// The profile settings of order-aware delivery (ordering, captures, coalesce) over the API:
/// stored and echoed when valid; every bad value refused with a problem naming the field, and
/// nothing saved, neither on create nor on replace.
public sealed class OrderAwareSettingsTests(TwoTenantHub fixture) : IClassFixture<TwoTenantHub>
{
    private const string Profiles = "/api/v1/export-profiles";

    private HubFactory Hub => fixture.Hub;

    private static JsonObject Profile(string patch = "{}")
    {
        var profile = JsonNode.Parse("""
            {
              "name": "ERP",
              "postbackUrl": "https://erp.example.com/orders",
              "exportDelayMinutes": 5,
              "mappings": [{"exportName": "order_id", "field": "orderId"}],
              "routes": [{"customerTypes": ["new_sale"]}]
            }
            """)!.AsObject();
        foreach (var (key, value) in JsonNode.Parse(patch)!.AsObject())
        {
            profile[key] = value?.DeepClone();
        }
        return profile;
    }

    [Fact]
    public async Task The_three_settings_are_stored_and_echoed_and_default_to_todays_behaviour()
    {
        var api = Hub.Api();
        var plain = await ReadOkAsync(await api.PostRawAsync(Profiles, Profile().ToJsonString()), HttpStatusCode.Created);
        Assert.Equal("none", plain["ordering"]!.GetValue<string>());
        Assert.False(plain["coalesce"]!.GetValue<bool>());
        Assert.Empty(plain["captures"]!.AsArray());

        var created = await ReadOkAsync(await api.PostRawAsync(Profiles, Profile("""
            {"ordering": "perOrder", "coalesce": true,
             "captures": [{"field": "[erpOrderNumber]", "from": "/data/erpId"}, {"field": "erpStatus", "from": "/a~1b/0/m~0n"}, {"field": "erpWhole", "from": ""}]}
            """).ToJsonString()), HttpStatusCode.Created);
        Assert.Equal("perOrder", created["ordering"]!.GetValue<string>());
        Assert.True(created["coalesce"]!.GetValue<bool>());
        Assert.Equal("""[{"field":"erpOrderNumber","from":"/data/erpId"},{"field":"erpStatus","from":"/a~1b/0/m~0n"},{"field":"erpWhole","from":""}]""",
            created["captures"]!.ToJsonString());
        var id = created["id"]!.GetValue<long>();
        var read = await ReadOkAsync(await api.GetAsync($"{Profiles}/{id}"));
        Assert.Equal(created["captures"]!.ToJsonString(), read["captures"]!.ToJsonString());
        Assert.Equal("perOrder", read["ordering"]!.GetValue<string>());
    }

    public static TheoryData<string, string> BadSettings => new()
    {
        { """{"ordering": "fifo"}""", "ordering" },
        { """{"ordering": ""}""", "ordering" },
        { """{"captures": [{"field": "erpId", "from": "data/erpId"}]}""", "captures[0].from" },
        { """{"captures": [{"field": "erpId", "from": "/data/~2"}]}""", "captures[0].from" },
        { """{"captures": [{"field": "erpId", "from": "/data/~"}]}""", "captures[0].from" },
        { """{"captures": [{"field": "erpId", "from": "#/data/erpId"}]}""", "captures[0].from" },
        { """{"captures": [{"field": "erpId"}]}""", "captures[0].from" },
        { """{"captures": [{"field": "firstName", "from": "/name"}]}""", "captures[0].field" },
        { """{"captures": [{"field": "[EmailAddress]", "from": "/email"}]}""", "captures[0].field" },
        { """{"captures": [{"field": "customerType", "from": "/type"}]}""", "captures[0].field" },
        { """{"captures": [{"field": "product1_sku", "from": "/sku"}]}""", "captures[0].field" },
        { """{"captures": [{"field": "erp-number", "from": "/n"}]}""", "captures[0].field" },
        { """{"captures": [{"field": "1erp", "from": "/n"}]}""", "captures[0].field" },
        { """{"captures": [{"from": "/n"}]}""", "captures[0].field" },
        { """{"captures": [{"field": "erpId", "from": "/a"}, {"field": "ERPID", "from": "/b"}]}""", "captures[1].field" },
        { """{"captures": [null]}""", "captures[0]" },
        { """{"coalesce": true, "exportDelayMinutes": 0}""", "coalesce" },
        { """{"coalesce": true, "exportDelayMinutes": null}""", "coalesce" },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public async Task A_bad_setting_is_refused_naming_the_field_and_nothing_is_saved(string patch, string field)
    {
        var api = Hub.Api();
        var before = await Hub.WithDbAsync(db => db.ExportProfiles.CountAsync());
        var reason = await AssertProblemAsync(await api.PostRawAsync(Profiles, Profile(patch).ToJsonString()), 400, field);
        Assert.False(string.IsNullOrWhiteSpace(reason));
        Assert.Equal(before, await Hub.WithDbAsync(db => db.ExportProfiles.CountAsync()));

        // Replacing a stored profile with the same bad value leaves it as it was.
        var created = await ReadOkAsync(await api.PostRawAsync(Profiles, Profile("""{"captures": [{"field": "erpKeep", "from": "/keep"}]}""").ToJsonString()), HttpStatusCode.Created);
        var id = created["id"]!.GetValue<long>();
        await AssertProblemAsync(await api.PutAsync($"{Profiles}/{id}",
            new StringContent(Profile(patch).ToJsonString(), System.Text.Encoding.UTF8, "application/json")), 400, field);
        var after = await ReadOkAsync(await api.GetAsync($"{Profiles}/{id}"));
        Assert.Equal(created.ToJsonString(), after.ToJsonString());
    }

    [Fact]
    public async Task A_capture_naming_a_crm_field_says_it_cannot_be_overwritten()
    {
        var reason = await AssertProblemAsync(await Hub.Api().PostRawAsync(Profiles,
            Profile("""{"captures": [{"field": "orderStatus", "from": "/status"}]}""").ToJsonString()), 400, "captures[0].field");
        Assert.Contains("CRM field", reason);
        Assert.Contains("cannot be overwritten", reason);
    }
}
