using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Postback.FileExports;
using Postback.Retention;
using Postback.Tests.FileExports;
using Postback.Tests.Support;
using static Postback.Tests.Support.Json;

namespace Postback.Tests.Retention;

/// File runs under retention, on both databases: a day's finished runs and the CSV each kept
/// for download go with the finished deliveries' period; a pending run stays however old; and a
/// run of a day the scheduler still catches up on stays whatever the period, or the scheduler
/// would upload that day again. Sweeps run with a FakeTimeProvider set days ahead.
public abstract class FileRunRetentionTests(StorageKind storage)
{
    [Fact]
    public async Task Finished_file_runs_go_with_their_files_after_the_period_and_pending_ones_stay()
    {
        var time = new FakeTimeProvider(FileScenario.Created);
        await using var hub = await FileHub.StartAsync(time, storage);
        using var api = hub.Api();
        var (directory, _) = FileServers.NewDirectory(FileDestinations.Folder);
        var profileId = await FileScenario.CreateAsync(api, FileServers.Settings(FileDestinations.Folder, directory));
        // A second profile whose folder is gone: its runs fail and stay pending, retrying.
        var (gone, _) = FileServers.NewDirectory(FileDestinations.Folder);
        var goneId = await FileScenario.CreateAsync(api, FileServers.Settings(FileDestinations.Folder, gone), name: "Gone");
        Directory.Delete(gone);
        await FileScenario.PostDayAsync(api);
        time.SetUtcNow(FileScenario.RunDue);
        Assert.Equal(4, await hub.PassAsync());
        var runs = await FileScenario.RunsAsync(api, profileId);
        Assert.Equal(2, runs.Count);
        Assert.All(runs, r => Assert.Equal("succeeded", r!["status"]!.GetValue<string>()));
        var pending = await FileScenario.RunsAsync(api, goneId);
        Assert.All(pending, r => Assert.Equal("pending", r!["status"]!.GetValue<string>()));
        var salesId = runs.Single(r => r!["route"]!.GetValue<string>() == "sales")!["id"]!.GetValue<long>();

        // A period of one day, two days on: the runs are old enough, but their day is one the
        // scheduler still looks at, so they stay.
        var shortPeriod = RetentionOptions.Default with { FinishedDeliveries = TimeSpan.FromDays(1) };
        Assert.Equal(0, (await SweepAsync(hub, FileScenario.RunDue.AddDays(2), shortPeriod)).FileRuns);
        Assert.Equal(2, (await FileScenario.RunsAsync(api, profileId)).Count);

        // 29 days on, nothing is old enough.
        Assert.Equal(0, (await SweepAsync(hub, FileScenario.RunDue.AddDays(29), RetentionOptions.Default)).FileRuns);
        Assert.Equal(FileScenario.SalesCsv, await (await api.GetAsync($"/api/v1/export-profiles/{profileId}/runs/{salesId}/file")).Content.ReadAsStringAsync());

        // 31 days on, the finished runs go, files and all; the pending runs stay.
        var removed = await SweepAsync(hub, FileScenario.RunDue.AddDays(31), RetentionOptions.Default);
        Assert.Equal(2, removed.FileRuns);
        Assert.Empty(await FileScenario.RunsAsync(api, profileId));
        await AssertNotFoundAsync(await api.GetAsync($"/api/v1/export-profiles/{profileId}/runs/{salesId}"));
        await AssertNotFoundAsync(await api.GetAsync($"/api/v1/export-profiles/{profileId}/runs/{salesId}/file"));
        var stillPending = await FileScenario.RunsAsync(api, goneId);
        Assert.Equal(2, stillPending.Count);
        Assert.All(stillPending, r => Assert.Equal("pending", r!["status"]!.GetValue<string>()));

        // A retention period of off keeps them all.
        Assert.Equal(0, (await SweepAsync(hub, FileScenario.RunDue.AddDays(400), RetentionOptions.Default with { FinishedDeliveries = null })).FileRuns);
        Assert.Equal(HttpStatusCode.OK, (await api.GetAsync($"/api/v1/export-profiles/{goneId}/runs")).StatusCode);
    }

    /// Erasing a customer clears the files kept for download of the days that held their rows
    /// (each route's file of that day); the runs stay, and other days keep their files.
    [Fact]
    public async Task Erasing_a_customer_clears_the_kept_files_of_the_days_that_held_their_rows()
    {
        var time = new FakeTimeProvider(FileScenario.Created);
        await using var hub = await FileHub.StartAsync(time, storage);
        using var api = hub.Api();
        var (directory, local) = FileServers.NewDirectory(FileDestinations.Folder);
        var profileId = await FileScenario.CreateAsync(api, FileServers.Settings(FileDestinations.Folder, directory));
        var marker = $"erase-{Guid.NewGuid():N}";
        // Events are accepted up to a day ahead of the hub's clock.
        time.SetUtcNow(new DateTimeOffset(2026, 12, 1, 16, 0, 0, TimeSpan.Zero));
        // 2026-11-30 in New York: the customer's sale and someone else's; 2026-12-01: someone else's only.
        await FileScenario.PostEventAsync(api, "new_sale", new DateTimeOffset(2026, 11, 30, 14, 0, 0, TimeSpan.Zero),
            new { orderId = 5001, customerId = marker, firstName = marker });
        await FileScenario.PostEventAsync(api, "new_sale", new DateTimeOffset(2026, 11, 30, 15, 0, 0, TimeSpan.Zero),
            new { orderId = 5002, customerId = "someone-else", firstName = "Other" });
        await FileScenario.PostEventAsync(api, "new_sale", new DateTimeOffset(2026, 12, 1, 15, 0, 0, TimeSpan.Zero),
            new { orderId = 5003, customerId = "someone-else", firstName = "Other" });
        time.SetUtcNow(FileScenario.RunDue.AddDays(1));
        Assert.Equal(4, await hub.PassAsync());
        var runs = await FileScenario.RunsAsync(api, profileId);
        Assert.All(runs, r => Assert.True(r!["hasFile"]!.GetValue<bool>()));
        var sales30 = runs.Single(r => r!["route"]!.GetValue<string>() == "sales" && r["day"]!.GetValue<string>() == "2026-11-30")!["id"]!.GetValue<long>();
        Assert.Contains(marker, await (await api.GetAsync($"/api/v1/export-profiles/{profileId}/runs/{sales30}/file")).Content.ReadAsStringAsync(), StringComparison.Ordinal);

        var erased = await ReadOkAsync(await api.DeleteAsync($"/api/v1/customers/{marker}"));
        Assert.Equal(2, erased["fileRunFiles"]!.GetValue<int>());

        runs = await FileScenario.RunsAsync(api, profileId);
        Assert.Equal(4, runs.Count);
        Assert.All(runs, r => Assert.Equal(r!["day"]!.GetValue<string>() != "2026-11-30", r["hasFile"]!.GetValue<bool>()));
        await AssertNotFoundAsync(await api.GetAsync($"/api/v1/export-profiles/{profileId}/runs/{sales30}/file"));
        // What was uploaded is the receiver's: the file on the destination stays as it was.
        Assert.Contains(marker, FileScenario.Text(Path.Combine(local, "Call_center_sales_20261130.csv")), StringComparison.Ordinal);
    }

    /// One sweep as of the given time (the hub's own sweep may hold the lease for a moment).
    private static async Task<RemovedCounts> SweepAsync(FileHub hub, DateTimeOffset at, RetentionOptions options)
    {
        var sweep = new RetentionSweep(hub.Services.GetRequiredService<IRetentionStore>(), hub.Services.GetRequiredService<IJobLeaseStores>(), new FakeTimeProvider(at), options, NullLogger<RetentionSweep>.Instance);
        RemovedCounts? result = null;
        await DeliveryScenario.WaitUntilAsync(async () => (result = await sweep.RunOnceAsync(CancellationToken.None)) is not null,
            TimeSpan.FromSeconds(30), () => "the retention lease never came free");
        return result!;
    }
}

public sealed class FileRunRetentionSqliteTests() : FileRunRetentionTests(StorageKind.Sqlite);

public sealed class FileRunRetentionPostgresTests() : FileRunRetentionTests(StorageKind.Postgres);
