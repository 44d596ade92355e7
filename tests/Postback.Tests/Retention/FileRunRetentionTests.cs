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

    /// One sweep as of the given time (the hub's own sweep may hold the lease for a moment).
    private static async Task<RemovedCounts> SweepAsync(FileHub hub, DateTimeOffset at, RetentionOptions options)
    {
        var sweep = new RetentionSweep(hub.Services.GetRequiredService<IServiceScopeFactory>(), new FakeTimeProvider(at), options, NullLogger<RetentionSweep>.Instance);
        RemovedCounts? result = null;
        await DeliveryScenario.WaitUntilAsync(async () => (result = await sweep.RunOnceAsync(CancellationToken.None)) is not null,
            TimeSpan.FromSeconds(30), () => "the retention lease never came free");
        return result!;
    }
}

public sealed class FileRunRetentionSqliteTests() : FileRunRetentionTests(StorageKind.Sqlite);

public sealed class FileRunRetentionPostgresTests() : FileRunRetentionTests(StorageKind.Postgres);
