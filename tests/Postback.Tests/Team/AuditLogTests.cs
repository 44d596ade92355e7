using System.Net;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Postback.Team;
using Postback.Tests.Support;

namespace Postback.Tests.Team;

/// The audit log: who (the key's or user's name), when, what and on which resource, with the
/// changed fields and secrets masked; bulk actions get one entry each; ingest writes none.
public sealed class AuditLogTests(TwoTenantHub fixture) : IClassFixture<TwoTenantHub>
{
    private HubFactory Hub => fixture.Hub;

    private async Task<(string Key, string Name)> KeyAsync(string role)
    {
        var name = $"{role} {Guid.NewGuid():N}"[..20];
        var created = await Json.ReadOkAsync(await Hub.Api().PostJsonAsync("/api/v1/api-keys", new { name, role }), HttpStatusCode.Created);
        return (created["key"]!.GetValue<string>(), name);
    }

    private async Task<List<JsonNode>> EntriesAsync(Func<JsonNode, bool> which, string? key = null)
    {
        var page = await Json.ReadOkAsync(await Hub.Api(key ?? HubFactory.ApiKey).GetAsync("/api/v1/audit?limit=500"));
        return page["items"]!.AsArray().Select(e => e!).Where(which).ToList();
    }

    private static bool On(JsonNode e, string type, long id) =>
        e["resourceType"]!.GetValue<string>() == type && e["resourceId"]?.GetValue<string>() == id.ToString(System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task A_profile_created_changed_and_deleted_is_recorded_with_its_fields_and_the_key_that_did_it()
    {
        var (key, name) = await KeyAsync("operator");
        var api = Hub.Api(key);
        var created = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "Audited call center",
            postbackUrl = "https://callcenter.example.com/in",
            mappings = new object[]
            {
                new { exportName = "first_name", field = "firstName" },
                new { exportName = "header:Authorization", @static = "Bearer s3cr3t-token-value" },
            },
            routes = new[] { new { customerTypes = new[] { "new_sale" } } },
        }), HttpStatusCode.Created);
        var id = created["id"]!.GetValue<long>();

        var put = await api.PutJsonAsync($"/api/v1/export-profiles/{id}", new
        {
            name = "Audited call center (renamed)",
            postbackUrl = "https://callcenter.example.com/in",
            mappings = new object[] { new { exportName = "first_name", field = "firstName" } },
            routes = new[] { new { customerTypes = new[] { "new_sale" } } },
        });
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await api.DeleteAsync($"/api/v1/export-profiles/{id}")).StatusCode);

        var entries = await EntriesAsync(e => On(e, "export-profile", id));
        Assert.Equal(["delete", "update", "create"], entries.Select(e => e["action"]!.GetValue<string>()));
        Assert.All(entries, e => Assert.Equal("key:" + name, e["actor"]!.GetValue<string>()));

        var create = entries[2];
        Assert.Equal("Audited call center", create["changes"]!["name"]!["to"]!.GetValue<string>());
        var text = create.ToJsonString();
        Assert.DoesNotContain("s3cr3t-token-value", text, StringComparison.Ordinal);
        Assert.Contains("https://callcenter.example.com/in", text, StringComparison.Ordinal);

        var update = entries[1]["changes"]!.AsObject();
        Assert.Equal("Audited call center", update["name"]!["from"]!.GetValue<string>());
        Assert.Equal("Audited call center (renamed)", update["name"]!["to"]!.GetValue<string>());
        Assert.False(update.ContainsKey("postbackUrl"), "an unchanged field is not listed: " + update.ToJsonString());
        Assert.DoesNotContain("s3cr3t-token-value", update.ToJsonString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Key_changes_are_recorded_without_key_material()
    {
        var created = await Json.ReadOkAsync(await Hub.Api().PostJsonAsync("/api/v1/api-keys", new { name = "audited key", role = "viewer" }), HttpStatusCode.Created);
        var id = created["id"]!.GetValue<long>();
        var key = created["key"]!.GetValue<string>();
        Assert.Equal(HttpStatusCode.NoContent, (await Hub.Api().DeleteAsync($"/api/v1/api-keys/{id}")).StatusCode);

        var entries = await EntriesAsync(e => On(e, "api-key", id));
        Assert.Equal(["revoke", "create"], entries.Select(e => e["action"]!.GetValue<string>()));
        Assert.All(entries, e => Assert.Equal("key:bootstrap", e["actor"]!.GetValue<string>()));
        var text = string.Join("\n", entries.Select(e => e.ToJsonString()));
        Assert.DoesNotContain(key, text, StringComparison.Ordinal);
        Assert.DoesNotContain(key[12..], text, StringComparison.Ordinal);
        Assert.Equal("audited key", entries[1]["changes"]!["name"]!["to"]!.GetValue<string>());
        Assert.Equal("***", entries[1]["changes"]!["keyHash"]!["to"]!.GetValue<string>());
    }

    [Fact]
    public async Task Bulk_actions_get_one_entry_each_and_ingest_gets_none()
    {
        var before = await Hub.WithDbAsync(db => db.Audit.CountAsync());
        var accepted = await Hub.Api().PostJsonAsync("/api/v1/events", new { type = "new_sale", order = new { orderId = 7_770_001, firstName = "Jane" } });
        Assert.True(accepted.IsSuccessStatusCode, await accepted.Content.ReadAsStringAsync());
        Assert.Equal(before, await Hub.WithDbAsync(db => db.Audit.CountAsync()));

        var (key, name) = await KeyAsync("operator");
        var replay = await Hub.Api(key).PostJsonAsync("/api/v1/deliveries/replay", new { status = "failed" });
        Assert.Equal(HttpStatusCode.OK, replay.StatusCode);
        var preview = await Hub.Api(key).PostJsonAsync("/api/v1/deliveries/replay/preview", new { status = "failed" });
        Assert.Equal(HttpStatusCode.OK, preview.StatusCode);

        var entries = await EntriesAsync(e => e["actor"]!.GetValue<string>() == "key:" + name);
        var entry = Assert.Single(entries);
        Assert.Equal("replay", entry["action"]!.GetValue<string>());
        Assert.Equal("deliveries", entry["resourceType"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_refused_change_writes_no_entry()
    {
        var before = await Hub.WithDbAsync(db => db.Audit.CountAsync());
        await Json.AssertProblemAsync(await Hub.Api().PostJsonAsync("/api/v1/export-profiles", new { name = "", postbackUrl = "ftp://x" }), 400, "name");
        var (viewer, _) = await KeyAsync("viewer");
        before++; // the key's own creation
        Assert.Equal(HttpStatusCode.Forbidden, (await Hub.Api(viewer).PostJsonAsync("/api/v1/deliveries/replay", new { })).StatusCode);
        Assert.Equal(before, await Hub.WithDbAsync(db => db.Audit.CountAsync()));
    }

    [Fact]
    public async Task Only_admins_read_the_log_and_only_their_own_organizations()
    {
        var (operatorKey, _) = await KeyAsync("operator");
        var (viewerKey, _) = await KeyAsync("viewer");
        Assert.Equal(HttpStatusCode.Forbidden, (await Hub.Api(operatorKey).GetAsync("/api/v1/audit")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await Hub.Api(viewerKey).GetAsync("/api/v1/audit")).StatusCode);

        var campaign = await Hub.Api(fixture.OtherKey).PostJsonAsync("/api/v1/campaigns", new { campaignId = "AUD-1", name = "Other's campaign", products = Array.Empty<object>() });
        Assert.Equal(HttpStatusCode.Created, campaign.StatusCode);
        Assert.Contains(await EntriesAsync(e => e["resourceType"]!.GetValue<string>() == "campaign", fixture.OtherKey),
            e => e["changes"]?["name"]?["to"]?.GetValue<string>() == "Other's campaign");
        Assert.DoesNotContain(await EntriesAsync(_ => true), e => e.ToJsonString().Contains("Other's campaign", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_log_pages_newest_first_and_refuses_a_bad_limit()
    {
        for (var i = 0; i < 3; i++)
        {
            await Json.ReadOkAsync(await Hub.Api().PostJsonAsync("/api/v1/api-keys", new { name = $"page {i}", role = "viewer" }), HttpStatusCode.Created);
        }
        var first = await Json.ReadOkAsync(await Hub.Api().GetAsync("/api/v1/audit?limit=2"));
        var items = first["items"]!.AsArray();
        Assert.Equal(2, items.Count);
        Assert.True(items[0]!["id"]!.GetValue<long>() > items[1]!["id"]!.GetValue<long>());
        var next = first["nextBefore"]!.GetValue<long>();
        var second = await Json.ReadOkAsync(await Hub.Api().GetAsync($"/api/v1/audit?limit=2&before={next}"));
        Assert.All(second["items"]!.AsArray(), e => Assert.True(e!["id"]!.GetValue<long>() < next));
        await Json.AssertProblemAsync(await Hub.Api().GetAsync("/api/v1/audit?limit=0"), 400, "limit");
    }
}
