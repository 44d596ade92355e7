using System.Text.Json.Nodes;
using Postback.ExportProfiles;
using Postback.FileExports;
using Postback.Tests.Deliveries;
using Postback.Tests.Support;
using Xunit.Abstractions;

namespace Postback.Tests.FileExports;

/// The hub as a real OS process, killed with SIGKILL while it uploads a day's file to every
/// destination (held slow by Postback:FileExports:MaxBytesPerSecond), then started again on the
/// same SQLite file: the runs' leases run out, the new process runs them again, and each
/// directory ends with the whole file, once, under its name, and no .part left.
///
/// The runs are asked for by a first process whose worker is off, so the killed process claims
/// all four in its first pass and the four uploads overlap (a pass waits for what it claimed).
/// The day is three days back and the profiles' schedule half a day ahead: the day can be run
/// now, and no scheduled run of another day can start while the test runs, whatever the hour.
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
            // About 51 KB of CSV per file at 2 KB/s: each upload lasts about 25 s, so the kill
            // lands in all four even when connecting is slow on a loaded machine.
            ["Postback:FileExports:MaxBytesPerSecond"] = "2000",
        };
        HubProcess? setup = null, first = null, second = null;
        try
        {
            setup = await HubProcess.StartSqliteAsync(dataDirectory, "hub-0",
                new Dictionary<string, string?>(settings) { ["Postback:FileExports:Enabled"] = "false" });
            var targets = new List<(string Destination, string Local, long ProfileId, long RunId, string Name)>();
            using (var api = setup.Api())
            {
                var now = DateTime.UtcNow;
                var day = DateOnly.FromDateTime(now).AddDays(-3);
                var at = new DateTimeOffset(day.ToDateTime(new TimeOnly(12, 0)), TimeSpan.Zero);
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
                var schedule = new { time = now.AddHours(12).ToString("HH:mm", System.Globalization.CultureInfo.InvariantCulture), timeZone = "UTC" };
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
                    var profileId = created["id"]!.GetValue<long>();
                    var runs = await Json.ReadOkAsync(await api.PostJsonAsync($"/api/v1/export-profiles/{profileId}/runs",
                        new { date = FileDays.Format(day) }), System.Net.HttpStatusCode.Accepted);
                    targets.Add((destination, local, profileId, runs[0]!["id"]!.GetValue<long>(), $"Crash_{destination}_all_{day:yyyyMMdd}.csv"));
                }
            }
            Assert.Equal(0, await setup.StopAsync());

            first = await HubProcess.StartSqliteAsync(dataDirectory, "hub-1", settings);
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

            var expected = "order_id,list\r\n" + string.Concat(Enumerable.Range(0, Rows).Select(i => $"{100000 + i},list-400\r\n"));
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
                // Claimed by hub-1 (killed), then once by hub-2.
                Assert.Equal(2, done["attempts"]!.GetValue<int>());
                // The whole file, once, under its name; no .part left behind.
                Assert.Equal([t.Name], FileServers.Files(t.Local));
                var uploaded = await File.ReadAllBytesAsync(Path.Combine(t.Local, t.Name));
                var download = await (await api2.GetAsync($"/api/v1/export-profiles/{t.ProfileId}/runs/{t.RunId}/file")).Content.ReadAsByteArrayAsync();
                Assert.Equal(download, uploaded);
                // Byte for byte: the header, then every event's row once, in event order.
                Assert.Equal(expected, System.Text.Encoding.UTF8.GetString(uploaded));
            }
        }
        finally
        {
            if (setup is not null)
            {
                await setup.DisposeAsync();
            }
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
