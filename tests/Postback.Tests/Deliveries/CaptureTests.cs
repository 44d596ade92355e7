using System.Text.Json;
using System.Text.Json.Nodes;
using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.Orders;
using Postback.Outbound;
using Postback.Tests.Support;

namespace Postback.Tests.Deliveries;

/// Answers captured onto the order: the pure parts (JSON Pointer, reading an answer, newer
/// beats older), then end to end with real receivers on 127.0.0.1: an ERP's answer carries its
/// order number into a later fulfillment export; an answer that is not JSON changes nothing.
public sealed class CaptureTests : IAsyncLifetime
{
    // ------------------------------------------------------------ pure

    [Theory]
    [InlineData("", """{"a":1}""", """{"a":1}""")]
    [InlineData("/a", """{"a":"x"}""", "\"x\"")]
    [InlineData("/a~1b/m~0n", """{"a/b":{"m~n":7}}""", "7")]
    [InlineData("/list/1", """{"list":[1,2,3]}""", "2")]
    [InlineData("/", """{"":5}""", "5")]
    [InlineData("/ ", """{" ":6}""", "6")]
    public void A_pointer_finds_what_RFC_6901_says(string pointer, string document, string expected)
    {
        Assert.Null(JsonPointer.Check(pointer));
        using var doc = JsonDocument.Parse(document);
        var found = JsonPointer.Evaluate(doc.RootElement, pointer, out _);
        Assert.NotNull(found);
        Assert.Equal(expected, found.Value.GetRawText());
    }

    [Theory]
    [InlineData("/list/01")]
    [InlineData("/list/-")]
    [InlineData("/list/3")]
    [InlineData("/missing")]
    [InlineData("/a/b")]
    public void A_pointer_to_nothing_finds_nothing(string pointer)
    {
        using var doc = JsonDocument.Parse("""{"list":[1,2,3],"a":"text"}""");
        Assert.Null(JsonPointer.Evaluate(doc.RootElement, pointer, out var missing));
        Assert.NotNull(missing);
    }

    [Theory]
    [InlineData("a")]
    [InlineData("#/a")]
    [InlineData("/a~")]
    [InlineData("/a~2")]
    public void Text_that_is_not_a_pointer_is_refused(string pointer) => Assert.NotNull(JsonPointer.Check(pointer));

    private static OutboundResponse Answer(string body, bool truncated = false) => new(200, [], body, truncated);

    [Fact]
    public void Strings_numbers_and_booleans_are_taken_and_the_rest_leaves_the_field_unchanged()
    {
        var captures = new[]
        {
            new ProfileCapture("erpId", "/data/id"), new ProfileCapture("erpTotal", "/data/total"), new ProfileCapture("erpOk", "/ok"),
            new ProfileCapture("erpObject", "/data"), new ProfileCapture("erpNull", "/none"), new ProfileCapture("erpMissing", "/data/nope"),
        };
        var notes = AnswerCapture.Read(captures, Answer("""{"data":{"id":"ERP-1","total":12.50},"ok":true,"none":null}"""));
        Assert.Equal(["ERP-1", "12.50", "true", null, null, null], notes.Select(n => n.Value));
        Assert.Contains("object", notes[3].Note);
        Assert.Contains("null", notes[4].Note);
        Assert.Contains("'nope'", notes[5].Note);
        Assert.All(notes.Skip(3), n => Assert.Contains("unchanged", n.Note));
    }

    [Fact]
    public void An_answer_that_is_not_json_or_is_cut_off_takes_nothing_and_says_so()
    {
        var captures = new[] { new ProfileCapture("erpId", "/id") };
        var notJson = Assert.Single(AnswerCapture.Read(captures, Answer("OK")));
        Assert.Null(notJson.Value);
        Assert.Equal("the answer is not JSON; field unchanged", notJson.Note);
        var cut = Assert.Single(AnswerCapture.Read(captures, Answer("""{"id":"1", """, truncated: true)));
        Assert.Null(cut.Value);
        Assert.Contains("longer than", cut.Note);
    }

    [Fact]
    public void A_capture_for_an_older_event_does_not_replace_one_for_a_newer_event()
    {
        var data = OrderJson.Serialize(new OrderData { OrderId = 7, Fields = new Dictionary<string, string> { ["orderId"] = "7" }, Items = [] });
        var at = DateTimeOffset.Parse("2026-01-01T00:00:00Z");
        var (newer, sources, _) = OrderCaptures.Apply(data, null, [new CaptureNote("erpId", "/id", "NEW", null)], new CaptureSource(EventKey: 20, 200, 1, at));
        Assert.NotNull(newer);

        var (older, _, notes) = OrderCaptures.Apply(newer!, sources, [new CaptureNote("erpId", "/id", "OLD", null)], new CaptureSource(EventKey: 10, 100, 1, at));
        Assert.Null(older);
        Assert.Contains("delivery 200", Assert.Single(notes).Note);
        Assert.Equal("NEW", OrderJson.Deserialize(newer!).Get("erpId"));

        var (same, _, _) = OrderCaptures.Apply(newer!, sources, [new CaptureNote("erpId", "/id", "NEWER", null)], new CaptureSource(EventKey: 30, 300, 1, at));
        Assert.Equal("NEWER", OrderJson.Deserialize(same!).Get("ERPID"));
    }

    // ------------------------------------------------------------ end to end

    private HubFactory _hub = null!;
    private HttpClient _api = null!;
    private Receiver _erp = null!;
    private Receiver _fulfillment = null!;

    public async Task InitializeAsync()
    {
        _hub = await HubFactory.StartAsync(dispatch: true, settings: new Dictionary<string, string?>
        {
            ["Postback:Delivery:FirstRetrySeconds"] = "0.05",
            ["Postback:Delivery:PollMilliseconds"] = "50",
        });
        _api = _hub.Api();
        _erp = await Receiver.StartAsync();
        _fulfillment = await Receiver.StartAsync();
    }

    public async Task DisposeAsync()
    {
        _api.Dispose();
        await _hub.DisposeAsync();
        await _erp.DisposeAsync();
        await _fulfillment.DisposeAsync();
    }

    private async Task ProfileAsync(object profile) =>
        await Json.ReadOkAsync(await _api.PostJsonAsync("/api/v1/export-profiles", profile), System.Net.HttpStatusCode.Created);

    private async Task<long> EventAsync(string type, long orderId)
    {
        var accepted = await Json.ReadOkAsync(await _api.PostJsonAsync("/api/v1/events", new { type, order = new { orderId, firstName = "Jane" } }),
            System.Net.HttpStatusCode.Accepted);
        return accepted["deliveries"]![0]!["id"]!.GetValue<long>();
    }

    private async Task<JsonNode> SettledAsync(long id)
    {
        JsonNode? detail = null;
        await DeliveryScenario.WaitUntilAsync(async () =>
            (detail = await Json.ReadOkAsync(await _api.GetAsync($"/api/v1/deliveries/{id}")))["delivery"]!["status"]!.GetValue<string>() == "succeeded",
            TimeSpan.FromSeconds(30), () => $"delivery {id} succeeded: {detail?.ToJsonString()}");
        return detail!;
    }

    [Fact]
    public async Task A_value_captured_from_the_ERP_answer_goes_out_in_a_later_fulfillment_export()
    {
        _erp.Respond = _ => (200, """{"data":{"erpId":"ERP-4711","lines":[{"ref":"L1"}]}}""");
        await ProfileAsync(new
        {
            name = "ERP",
            postbackUrl = _erp.Url("/orders"),
            mappings = new[] { new { exportName = "order_id", field = "orderId" } },
            routes = new[] { new { customerTypes = new[] { "new_sale" } } },
            captures = new[] { new { field = "erpOrderNumber", from = "/data/erpId" }, new { field = "erpLine", from = "/data/lines/0/ref" } },
        });
        await ProfileAsync(new
        {
            name = "Fulfillment",
            postbackUrl = _fulfillment.Url("/ship"),
            mappings = new[] { new { exportName = "order_id", field = "orderId" }, new { exportName = "erp", field = "[erpOrderNumber]" } },
            routes = new[] { new { customerTypes = new[] { "fulfillment_shipped" } } },
        });

        var sale = await EventAsync("new_sale", 880_001);
        var detail = await SettledAsync(sale);
        var captured = detail["attempts"]![0]!["captures"]!.AsArray();
        Assert.Equal("ERP-4711", captured[0]!["value"]!.GetValue<string>());
        Assert.Equal("L1", captured[1]!["value"]!.GetValue<string>());

        var order = await Json.ReadOkAsync(await _api.GetAsync("/api/v1/orders/880001"));
        Assert.Equal("ERP-4711", order["order"]!["erpOrderNumber"]!.GetValue<string>());
        var fields = order["captured"]!.AsArray();
        Assert.Equal(["erpLine", "erpOrderNumber"], fields.Select(f => f!["field"]!.GetValue<string>()));
        Assert.All(fields, f => Assert.Equal(sale, f!["deliveryId"]!.GetValue<long>()));

        // The shipment comes later: its export carries the ERP's number.
        var shipped = await EventAsync("fulfillment_shipped", 880_001);
        await SettledAsync(shipped);
        Assert.Equal("?order_id=880001&erp=ERP-4711", Assert.Single(_fulfillment.Received).RawQuery);

        // A CRM postback that does not carry the field keeps it.
        await EventAsync("new_sale", 880_001);
        var again = await Json.ReadOkAsync(await _api.GetAsync("/api/v1/orders/880001"));
        Assert.Equal("ERP-4711", again["order"]!["erpOrderNumber"]!.GetValue<string>());
    }

    [Fact]
    public async Task An_answer_that_is_not_json_leaves_the_field_unchanged_and_says_so_on_the_attempt()
    {
        _erp.Respond = _ => (200, "OK thanks");
        await ProfileAsync(new
        {
            name = "ERP text",
            postbackUrl = _erp.Url("/text"),
            mappings = new[] { new { exportName = "order_id", field = "orderId" } },
            routes = new[] { new { customerTypes = new[] { "new_sale" } } },
            captures = new[] { new { field = "erpOrderNumber", from = "/data/erpId" } },
        });
        var id = await EventAsync("new_sale", 880_002);
        var detail = await SettledAsync(id);
        var note = Assert.Single(detail["attempts"]![0]!["captures"]!.AsArray())!;
        Assert.Null(note["value"]);
        Assert.Equal("the answer is not JSON; field unchanged", note["note"]!.GetValue<string>());
        var order = await Json.ReadOkAsync(await _api.GetAsync("/api/v1/orders/880002"));
        Assert.Null(order["order"]!["erpOrderNumber"]);
        Assert.Empty(order["captured"]!.AsArray());
    }
}
