using System.Text.Json.Nodes;
using Postback.Tests.Support;

namespace Postback.Tests.FileExports;

/// A file profile with two routes (sales: new_sale, named; the second unnamed, so route2:
/// partial) and a day of events in America/New_York, 2026-11-30, with one event just before
/// and one just after the day's local midnight. The files it must produce are spelt out byte
/// for byte.
public static class FileScenario
{
    public static readonly DateTimeOffset Created = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);
    // 00:15 in New York on 2026-12-01 (EST, UTC-5) is 05:15 UTC: the run for 2026-11-30 is due.
    public static readonly DateTimeOffset RunDue = new(2026, 12, 1, 5, 15, 0, TimeSpan.Zero);
    public const string Day = "2026-11-30";
    public const string SalesFile = "Call_center_sales_20261130.csv";
    public const string PartialsFile = "Call_center_route2_20261130.csv";

    public const string Header = "order_id,name,last,total,type,list_id\r\n";
    public const string SalesCsv = Header
        + "1001,Jane,\"Doe, Jr.\",19.99,new_sale,400\r\n"
        + "1003,Ann,Smith,5.00,new_sale,400\r\n";
    public const string PartialsCsv = Header
        + "1002,\"Li \"\"Lee\"\"\",Wu,,partial,400\r\n";

    public static object Profile(Dictionary<string, object?> file, string name = "Call center", int? giveUpAfterHours = null) => new
    {
        name,
        type = "file",
        exportDelayMinutes = 0,
        giveUpAfterHours,
        mappings = new object[]
        {
            new { exportName = "order_id", field = "orderId" },
            new { exportName = "name", field = "[firstName]" },
            new { exportName = "last", field = "lastName" },
            new { exportName = "total", field = "totalAmount" },
            new { exportName = "type", field = "customerType" },
            new { exportName = "list_id", @static = "400" },
        },
        routes = new object[]
        {
            new { name = "sales", customerTypes = new[] { "new_sale" } },
            new { customerTypes = new[] { "partial" } },
        },
        file,
    };

    public static async Task<long> CreateAsync(HttpClient api, Dictionary<string, object?> file, string name = "Call center", int? giveUpAfterHours = null)
    {
        var created = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/export-profiles", Profile(file, name, giveUpAfterHours)), System.Net.HttpStatusCode.Created);
        return created["id"]!.GetValue<long>();
    }

    public static async Task PostEventAsync(HttpClient api, string type, DateTimeOffset at, object order)
    {
        var response = await api.PostJsonAsync("/api/v1/events", new { eventId = Guid.NewGuid().ToString("N"), type, occurredAt = at, order });
        await Json.ReadOkAsync(response, System.Net.HttpStatusCode.Accepted);
    }

    public static async Task PostDayAsync(HttpClient api)
    {
        await PostEventAsync(api, "new_sale", new DateTimeOffset(2026, 11, 30, 14, 0, 0, TimeSpan.Zero),
            new { orderId = 1001, firstName = "Jane", lastName = "Doe, Jr.", totalAmount = "19.99" });
        await PostEventAsync(api, "partial", new DateTimeOffset(2026, 11, 30, 15, 0, 0, TimeSpan.Zero),
            new { orderId = 1002, firstName = "Li \"Lee\"", lastName = "Wu" });
        // 23:59:59 on the 30th in New York: in the day.
        await PostEventAsync(api, "new_sale", new DateTimeOffset(2026, 12, 1, 4, 59, 59, TimeSpan.Zero),
            new { orderId = 1003, firstName = "Ann", lastName = "Smith", totalAmount = "5" });
        // Midnight on the 1st in New York: the next day's file.
        await PostEventAsync(api, "new_sale", new DateTimeOffset(2026, 12, 1, 5, 0, 0, TimeSpan.Zero),
            new { orderId = 1004, firstName = "Next", lastName = "Day", totalAmount = "1" });
        // A test card never exports.
        await PostEventAsync(api, "new_sale", new DateTimeOffset(2026, 11, 30, 16, 0, 0, TimeSpan.Zero),
            new { orderId = 1005, firstName = "Test", lastName = "Card", totalAmount = "1", isTestCard = true });
    }

    public static async Task<JsonArray> RunsAsync(HttpClient api, long profileId) =>
        (await Json.ReadOkAsync(await api.GetAsync($"/api/v1/export-profiles/{profileId}/runs")))["items"]!.AsArray();

    public static string Text(string path) => File.ReadAllText(path, new System.Text.UTF8Encoding(false));
}
