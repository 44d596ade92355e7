using Microsoft.EntityFrameworkCore;
using Postback.Orders;
using Postback.Tests.Support;

namespace Postback.Tests.Orders;

/// Edge cases of the events, profiles and campaigns API: a reused event id, property casing,
/// a product a route uses, the times a created profile answers with.
public sealed class ApiEdgeCaseTests : IAsyncLifetime
{
    private HubFactory _hub = null!;
    private HttpClient _api = null!;

    public async Task InitializeAsync()
    {
        _hub = await HubFactory.StartAsync();
        _api = _hub.Api();
    }

    public async Task DisposeAsync()
    {
        _api.Dispose();
        await _hub.DisposeAsync();
    }

    [Fact]
    public async Task An_event_id_reused_for_another_order_or_type_is_refused_and_stores_nothing_while_a_true_retry_is_a_duplicate()
    {
        Assert.Equal(202, (int)(await _api.PostJsonAsync("/api/v1/events", new { eventId = "reuse-1", type = "new_sale", order = new { orderId = 501 } })).StatusCode);

        var otherOrder = await _api.PostJsonAsync("/api/v1/events", new { eventId = "reuse-1", type = "new_sale", order = new { orderId = 502 } });
        var reason = await Json.AssertProblemAsync(otherOrder, 409, "eventId");
        Assert.Contains("order 501", reason);

        var otherType = await _api.PostJsonAsync("/api/v1/events/batch", new
        {
            events = new object[]
            {
                new { eventId = "fresh-1", type = "new_sale", order = new { orderId = 503 } },
                new { eventId = "reuse-1", type = "cancel", order = new { orderId = 501 } },
            },
        });
        await Json.AssertProblemAsync(otherType, 409, "events[1].eventId");

        // Nothing of the refused requests was stored, not even the batch's good event.
        Assert.False(await _hub.WithDbAsync(db => db.Orders.AnyAsync(o => o.OrderId == 502 || o.OrderId == 503)));
        Assert.Equal(1, await _hub.WithDbAsync(db => db.OrderEvents.CountAsync(e => e.EventId == "reuse-1")));

        // A true retry is still a duplicate.
        var retry = await _api.PostJsonAsync("/api/v1/events", new { eventId = "reuse-1", type = "new_sale", order = new { orderId = 501 } });
        Assert.Equal(200, (int)retry.StatusCode);
        Assert.True((await Json.ReadAsync(retry))["duplicate"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Property_names_in_other_casing_are_refused_naming_the_property()
    {
        var response = await _api.PostRawAsync("/api/v1/export-profiles",
            """{"NAME": "x", "postbackUrl": "https://example.com/p", "mappings": [], "routes": []}""");
        await Json.AssertProblemAsync(response, 400, "NAME");
    }

    [Fact]
    public async Task A_product_a_route_uses_cannot_be_dropped_from_its_campaign_nor_the_campaign_deleted()
    {
        Assert.Equal(201, (int)(await _api.PostJsonAsync("/api/v1/campaigns", new
        {
            campaignId = "R-1",
            name = "Routed",
            products = new[] { new { productId = "RP-1", sku = "RS-1", name = "Kit" }, new { productId = "RP-2", sku = "RS-2", name = "Refill" } },
        })).StatusCode);
        Assert.Equal(201, (int)(await _api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "by product",
            postbackUrl = "https://example.com/p",
            mappings = Array.Empty<object>(),
            routes = new[] { new { customerTypes = new[] { "new_sale" }, productIds = new[] { "RP-2" } } },
        })).StatusCode);

        var drop = await _api.PutJsonAsync("/api/v1/campaigns/R-1", new { name = "Routed", products = new[] { new { productId = "RP-1", sku = "RS-1", name = "Kit" } } });
        var reason = await Json.AssertProblemAsync(drop, 409, "products");
        Assert.Contains("RP-2", reason);
        await Json.AssertProblemAsync(await _api.DeleteAsync("/api/v1/campaigns/R-1"), 409, "products");

        // Dropping a product no route names is fine.
        var keep = await _api.PutJsonAsync("/api/v1/campaigns/R-1", new { name = "Routed", products = new[] { new { productId = "RP-2", sku = "RS-2", name = "Refill" } } });
        Assert.Equal(200, (int)keep.StatusCode);
    }

    [Fact]
    public async Task A_created_profile_answers_with_the_same_times_a_later_read_shows()
    {
        var created = await Json.ReadAsync(await _api.PostJsonAsync("/api/v1/export-profiles", new
        {
            name = "times", postbackUrl = "https://example.com/p", mappings = Array.Empty<object>(), routes = Array.Empty<object>(),
        }));
        var read = await Json.ReadAsync(await _api.GetAsync($"/api/v1/export-profiles/{created["id"]}"));
        Assert.Equal(created["createdAt"]!.GetValue<DateTimeOffset>(), read["createdAt"]!.GetValue<DateTimeOffset>());
        Assert.Equal(created["updatedAt"]!.ToJsonString(), read["updatedAt"]!.ToJsonString());
    }
}
