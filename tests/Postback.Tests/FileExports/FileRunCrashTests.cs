using System.Text.Json.Nodes;
using Postback.Deliveries;
using Postback.Tests.Deliveries;
using Postback.Tests.Support;
using Xunit.Abstractions;

namespace Postback.Tests.FileExports;

/// The hub as a real OS process, killed with SIGKILL while it uploads a day's file (held slow by
/// Postback:FileExports:MaxBytesPerSecond), then started again on the same SQLite file: the run's
/// lease runs out, the new process runs it again, and the directory ends with the whole file,
/// once, under its name.
[Collection(HubProcessCollection.Name)]
public sealed class FileRunCrashTests(ITestOutputHelper output)
{
    private const int Rows = 3000;

    [Fact]
    public async Task Killed_during_uploads_to_every_destination_then_restarted_ends_with_each_file_uploaded_once()
    {
        var dataDirectory = DeliveryScenario.TempDirectory("files-crash");
        var settings = new Dictionary<string, string?>
        {
            ["Postback:Delivery:Enabled"] = "false",
            ["Postback:FileExports:FolderRoot"] = FileServers.FolderRoot,
            ["Postback:FileExports:PollSeconds"] = "1",
            ["Postback:FileExports:LeaseSeconds"] = "3",
            ["Postback:FileExports:FirstRetrySeconds"] = "1",
            // About 50 KB of CSV per file at 4 KB/s: the uploads last many seconds, so the kill
            // lands in them.
            ["Postback:FileExports:MaxBytesPerSecond"] = "4000",
        };
        HubProcess? first = null, second = null;
        try
        {
            first = await HubProcess.StartSqliteAsync(dataDirectory, "hub-1", settings);
            using var api = first.Api();
            var yesterday = DateOnly.FromDateTime(DateTime.UtcNow).AddDays(-1);
            var at = new DateTimeOffset(yesterday.ToDateTime(new TimeOnly(12, 0)), TimeSpan.Zero);
            for (var batch = 0; batch < Rows / 500; batch++)
            {
                var events = Enumerable.Range(batch * 500, 500).Select(i => new
                {
                    eventId = $"crash-{i}",
                    type = "new_sale",
                    occurredAt = at.AddSeconds(i),
                    order = new { orderId = 100000 + i },
                }).ToArray();
                await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/events/batch", new { events }), System.Net.HttpStatusCode.Accepted);
            }
            // Scheduled a minute or two from now (UTC), so one pass of the worker creates and
            // claims all four runs together and the four uploads overlap.
            var now = DateTime.UtcNow;
            var due = new DateTime(now.Year, now.Month, now.Day, now.Hour, now.Minute, 0, DateTimeKind.Utc).AddMinutes(2);
            Assert.True(DateOnly.FromDateTime(due) == DateOnly.FromDateTime(now), "this test needs two minutes before midnight UTC");
            var schedule = new { time = due.ToString("HH:mm", System.Globalization.CultureInfo.InvariantCulture), timeZone = "UTC" };

            var targets = new List<(string Destination, string Local, long ProfileId, long RunId, string Name)>();
            foreach (var destination in FileServers.Destinations)
            {
                var (remote, local) = FileServers.NewDirectory(destination);
                var file = FileServers.Settings(destination, remote);
                file["schedule"] = schedule;
                var created = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/export-profiles", new
                {
                    name = "Crash " + destination,
                    type = "file",
                    mappings = new object[] { new { exportName = "order_id", field = "orderId" }, new { exportName = "list", @static = "list-400" } },
                    routes = new object[] { new { name = "all", customerTypes = new[] { "new_sale" } } },
                    file,
                }), System.Net.HttpStatusCode.Created);
                targets.Add((destination, local, created["id"]!.GetValue<long>(), 0, $"Crash_{destination}_all_{yesterday:yyyyMMdd}.csv"));
            }
            for (var i = 0; i < targets.Count; i++)
            {
                var t = targets[i];
                JsonArray? runs = null;
                await DeliveryScenario.WaitUntilAsync(async () =>
                {
                    runs = (await Json.ReadOkAsync(await api.GetAsync($"/api/v1/export-profiles/{t.ProfileId}/runs")))["items"]!.AsArray();
                    return runs.Count == 1;
                }, TimeSpan.FromSeconds(200), () => $"{t.Destination}: the day's run should have been scheduled at {schedule.time}: {runs?.ToJsonString()}\n{first.Output}");
                targets[i] = t with { RunId = runs![0]!["id"]!.GetValue<long>() };
            }

            bool Uploading((string Destination, string Local, long ProfileId, long RunId, string Name) t) =>
                File.Exists(Path.Combine(t.Local, t.Name + ".part")) && new FileInfo(Path.Combine(t.Local, t.Name + ".part")).Length > 0;
            await DeliveryScenario.WaitUntilAsync(() => targets.All(Uploading), TimeSpan.FromSeconds(120),
                () => "hub-1 should be uploading every file: " + string.Join("; ", targets.Select(t => $"{t.Destination}: {string.Join(", ", FileServers.Files(t.Local))}")) + "\n" + first.Output);
            first.Kill();
            foreach (var t in targets)
            {
                output.WriteLine($"{t.Destination}: hub-1 killed with {new FileInfo(Path.Combine(t.Local, t.Name + ".part")).Length} bytes of {t.Name}.part written");
                Assert.False(File.Exists(Path.Combine(t.Local, t.Name)), $"{t.Destination}: the kill must land mid-upload, but the file was already in place; the test proves nothing");
            }

            second = await HubProcess.StartSqliteAsync(dataDirectory, "hub-2", new Dictionary<string, string?>(settings) { ["Postback:FileExports:MaxBytesPerSecond"] = "0" });
            using var api2 = second.Api();
            foreach (var t in targets)
            {
                JsonNode? done = null;
                await DeliveryScenario.WaitUntilAsync(async () =>
                {
                    done = await Json.ReadOkAsync(await api2.GetAsync($"/api/v1/export-profiles/{t.ProfileId}/runs/{t.RunId}"));
                    return done["status"]!.GetValue<string>() != "pending";
                }, TimeSpan.FromSeconds(90), () => $"{t.Destination}: the run should have finished after the restart: {done?.ToJsonString()}\n{second.Output}");

                Assert.Equal("succeeded", done!["status"]!.GetValue<string>());
                Assert.Equal(Rows, done["rows"]!.GetValue<int>());
                Assert.Equal(2, done["attempts"]!.GetValue<int>());
                Assert.Equal([t.Name], FileServers.Files(t.Local));
                var uploaded = await File.ReadAllBytesAsync(Path.Combine(t.Local, t.Name));
                var download = await (await api2.GetAsync($"/api/v1/export-profiles/{t.ProfileId}/runs/{t.RunId}/file")).Content.ReadAsByteArrayAsync();
                Assert.Equal(download, uploaded);
                var lines = System.Text.Encoding.UTF8.GetString(uploaded).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
                Assert.Equal(Rows + 1, lines.Length);
                Assert.Equal(Rows, lines.Skip(1).Distinct().Count());
            }
        }
        finally
        {
            if (first is not null)
            {
                await first.DisposeAsync();
            }
            if (second is not null)
            {
                await second.DisposeAsync();
            }
            DeliveryScenario.DeleteDirectory(dataDirectory);
        }
    }
}
