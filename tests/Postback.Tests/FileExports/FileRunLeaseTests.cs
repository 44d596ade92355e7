using Microsoft.Extensions.Time.Testing;
using Postback.ExportProfiles;
using Postback.FileExports;
using Postback.Tests.Support;

namespace Postback.Tests.FileExports;

/// Two hubs on one database, on SQLite and on PostgreSQL, scheduling and running the same due
/// days at the same moment: each (profile, route, day) gets one run, each run is claimed by one
/// process, and each file is uploaded once.
public sealed class FileRunLeaseTests
{
    public static TheoryData<StorageKind> Storages => new(StorageKind.Sqlite, StorageKind.Postgres);

    [Theory]
    [MemberData(nameof(Storages))]
    public async Task Two_processes_on_one_database_run_each_day_once(StorageKind storage)
    {
        var directory = DeliveryScenario.TempDirectory("files-lease");
        var connectionString = storage == StorageKind.Postgres
            ? await PostgresServer.CreateDatabaseAsync("pb_files_lease")
            : $"Data Source={Path.Combine(directory, "postback.db")}";
        var time = new FakeTimeProvider(FileScenario.Created);
        await using var a = new FileHub(time, storage, connectionString);
        a.StartServer();
        await using var b = new FileHub(time, storage, connectionString);
        b.StartServer();
        try
        {
            using var api = a.Api();
            var locals = new List<string>();
            var profiles = new List<long>();
            for (var i = 0; i < 3; i++)
            {
                var (remote, local) = FileServers.NewDirectory(FileDestinations.Folder);
                locals.Add(local);
                profiles.Add(await FileScenario.CreateAsync(api, FileServers.Settings(FileDestinations.Folder, remote), name: $"Call center {i}"));
            }
            await FileScenario.PostDayAsync(api);

            // Both processes pass at the same time, again and again, until neither finds work:
            // 3 profiles x 2 routes = 6 runs, more than one pass claims (FileRunWorker.ClaimBatch).
            time.SetUtcNow(FileScenario.RunDue);
            var claimed = 0;
            while (true)
            {
                var passes = await Task.WhenAll(a.PassAsync(), b.PassAsync());
                if (passes.Sum() == 0)
                {
                    break;
                }
                claimed += passes.Sum();
            }

            Assert.Equal(6, claimed);
            for (var i = 0; i < profiles.Count; i++)
            {
                var (profileId, local) = (profiles[i], locals[i]);
                var runs = await FileScenario.RunsAsync(api, profileId);
                Assert.Equal(2, runs.Count);
                Assert.All(runs, r =>
                {
                    Assert.Equal("succeeded", r!["status"]!.GetValue<string>());
                    Assert.Equal(1, r["attempts"]!.GetValue<int>());
                });
                // Each file once, whole, and no .part left.
                Assert.Equal([$"Call_center_{i}_route2_20261130.csv", $"Call_center_{i}_sales_20261130.csv"], FileServers.Files(local));
                Assert.Equal(FileScenario.SalesCsv, FileScenario.Text(Path.Combine(local, $"Call_center_{i}_sales_20261130.csv")));
                Assert.Equal(FileScenario.PartialsCsv, FileScenario.Text(Path.Combine(local, $"Call_center_{i}_route2_20261130.csv")));
            }
        }
        finally
        {
            DeliveryScenario.DeleteDirectory(directory);
        }
    }
}
