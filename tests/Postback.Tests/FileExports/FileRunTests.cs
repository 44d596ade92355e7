using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Time.Testing;
using Postback.Confirmations;
using Postback.FileExports;
using Postback.Notifications;
using Postback.Organizations;
using Postback.Tests.Support;

namespace Postback.Tests.FileExports;

/// File runs end to end against the real servers ./test.sh starts: sshd (internal-sftp chroot),
/// pyftpdlib FTP and FTPS, and a folder. The hub's clock is fake; each pass of the file worker
/// is run by the test after it moves the clock.
public sealed class FileRunTests
{
    public static TheoryData<string> Destinations => new(FileServers.Destinations);

    public static TheoryData<string> Pinned => new(FileDestinations.Sftp, FileDestinations.Ftps);

    [Theory]
    [MemberData(nameof(Destinations))]
    public async Task A_day_with_two_routes_uploads_two_files_with_the_exact_bytes(string destination)
    {
        var time = new FakeTimeProvider(FileScenario.Created);
        await using var hub = await FileHub.StartAsync(time);
        using var api = hub.Api();
        var (remote, local) = FileServers.NewDirectory(destination);
        var profileId = await FileScenario.CreateAsync(api, FileServers.Settings(destination, remote, useKey: true));
        await FileScenario.PostDayAsync(api);

        // Before the scheduled time nothing runs.
        time.SetUtcNow(FileScenario.RunDue.AddMinutes(-1));
        Assert.Equal(0, await hub.PassAsync());
        Assert.Empty(FileServers.Files(local));

        time.SetUtcNow(FileScenario.RunDue);
        Assert.Equal(2, await hub.PassAsync());

        Assert.Equal([FileScenario.PartialsFile, FileScenario.SalesFile], FileServers.Files(local));
        Assert.Equal(FileScenario.SalesCsv, FileScenario.Text(Path.Combine(local, FileScenario.SalesFile)));
        Assert.Equal(FileScenario.PartialsCsv, FileScenario.Text(Path.Combine(local, FileScenario.PartialsFile)));
        // UTF-8 without a byte order mark.
        Assert.Equal((byte)'o', File.ReadAllBytes(Path.Combine(local, FileScenario.SalesFile))[0]);

        var runs = await FileScenario.RunsAsync(api, profileId);
        Assert.Equal(2, runs.Count);
        var sales = runs.Single(r => r!["route"]!.GetValue<string>() == "sales")!;
        Assert.Equal("succeeded", sales["status"]!.GetValue<string>());
        Assert.Equal(FileScenario.Day, sales["day"]!.GetValue<string>());
        Assert.Equal(2, sales["rows"]!.GetValue<int>());
        Assert.Equal(FileScenario.SalesCsv.Length, sales["bytes"]!.GetValue<long>());
        Assert.Equal(FileScenario.SalesFile, sales["fileName"]!.GetValue<string>());
        Assert.Equal(1, sales["attempts"]!.GetValue<int>());

        // The file as uploaded, for download.
        var download = await api.GetAsync($"/api/v1/export-profiles/{profileId}/runs/{sales["id"]}/file");
        Assert.Equal(System.Net.HttpStatusCode.OK, download.StatusCode);
        Assert.Equal("text/csv", download.Content.Headers.ContentType?.MediaType);
        Assert.Equal(FileScenario.SalesCsv, await download.Content.ReadAsStringAsync());

        // Another pass at the same time runs nothing again.
        Assert.Equal(0, await hub.PassAsync());
    }

    [Theory]
    [MemberData(nameof(Destinations))]
    public async Task An_empty_day_writes_a_header_only_file_or_none_when_emptyFile_is_false(string destination)
    {
        var time = new FakeTimeProvider(FileScenario.Created);
        await using var hub = await FileHub.StartAsync(time);
        using var api = hub.Api();
        var (remote, local) = FileServers.NewDirectory(destination);
        var (remoteNone, localNone) = FileServers.NewDirectory(destination);
        var headerOnly = await FileScenario.CreateAsync(api, FileServers.Settings(destination, remote));
        var none = FileServers.Settings(destination, remoteNone);
        none["emptyFile"] = false;
        var noFile = await FileScenario.CreateAsync(api, none, name: "Quiet");

        time.SetUtcNow(FileScenario.RunDue);
        Assert.Equal(4, await hub.PassAsync());

        Assert.Equal([FileScenario.PartialsFile, FileScenario.SalesFile], FileServers.Files(local));
        Assert.Equal(FileScenario.Header, FileScenario.Text(Path.Combine(local, FileScenario.SalesFile)));
        Assert.Empty(FileServers.Files(localNone));
        foreach (var run in await FileScenario.RunsAsync(api, noFile))
        {
            Assert.Equal("succeeded", run!["status"]!.GetValue<string>());
            Assert.Equal(0, run["rows"]!.GetValue<int>());
            Assert.Null(run["fileName"]?.GetValue<string>());
        }
        Assert.All(await FileScenario.RunsAsync(api, headerOnly), r => Assert.Equal(0, r!["rows"]!.GetValue<int>()));
    }

    [Theory]
    [MemberData(nameof(Destinations))]
    public async Task A_server_that_is_down_then_comes_up_gets_the_file_once(string destination)
    {
        var time = new FakeTimeProvider(FileScenario.Created);
        await using var hub = await FileHub.StartAsync(time);
        using var api = hub.Api();
        var (remote, local) = FileServers.NewDirectory(destination);
        var folder = destination == FileDestinations.Folder;
        await using var forwarder = new TcpForwarder(FileServers.FreePort(), folder ? 0 : FileServers.Port(destination));
        var profileId = await FileScenario.CreateAsync(api, FileServers.Settings(destination, remote, port: folder ? null : forwarder.Port));
        await FileScenario.PostDayAsync(api);

        // Down: nothing listens on the port (for a folder: the directory is gone).
        var away = local + ".away";
        if (folder)
        {
            Directory.Move(local, away);
        }
        time.SetUtcNow(FileScenario.RunDue);
        Assert.Equal(2, await hub.PassAsync());
        var failed = await FileScenario.RunsAsync(api, profileId);
        Assert.All(failed, r =>
        {
            Assert.Equal("pending", r!["status"]!.GetValue<string>());
            Assert.Equal(1, r["attempts"]!.GetValue<int>());
            Assert.False(string.IsNullOrEmpty(r["lastError"]?.GetValue<string>()));
        });

        // Not due again before the backoff.
        Assert.Equal(0, await hub.PassAsync());

        if (folder)
        {
            Directory.Move(away, local);
        }
        else
        {
            forwarder.Up();
        }
        time.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(2, await hub.PassAsync());
        Assert.Equal([FileScenario.PartialsFile, FileScenario.SalesFile], FileServers.Files(local));
        Assert.Equal(FileScenario.SalesCsv, FileScenario.Text(Path.Combine(local, FileScenario.SalesFile)));
        var done = await FileScenario.RunsAsync(api, profileId);
        Assert.All(done, r =>
        {
            Assert.Equal("succeeded", r!["status"]!.GetValue<string>());
            Assert.Equal(2, r["attempts"]!.GetValue<int>());
            Assert.Null(r["lastError"]?.GetValue<string>());
        });

        // Once: later passes upload nothing more.
        time.Advance(TimeSpan.FromHours(2));
        Assert.Equal(0, await hub.PassAsync());
        Assert.Equal(2, (await FileScenario.RunsAsync(api, profileId)).Count);
    }

    [Theory]
    [MemberData(nameof(Pinned))]
    public async Task A_wrong_host_key_is_refused(string destination)
    {
        var time = new FakeTimeProvider(FileScenario.Created);
        await using var hub = await FileHub.StartAsync(time);
        using var api = hub.Api();
        var (remote, local) = FileServers.NewDirectory(destination);
        var wrong = "SHA256:" + new string('A', 43);
        var profileId = await FileScenario.CreateAsync(api, FileServers.Settings(destination, remote, fingerprint: wrong));
        await FileScenario.PostDayAsync(api);

        time.SetUtcNow(FileScenario.RunDue);
        Assert.Equal(2, await hub.PassAsync());
        Assert.Empty(FileServers.Files(local));
        foreach (var run in await FileScenario.RunsAsync(api, profileId))
        {
            Assert.Equal("pending", run!["status"]!.GetValue<string>());
            var error = run["lastError"]!.GetValue<string>();
            Assert.True(destination == FileDestinations.Sftp ? error.Contains("host key", StringComparison.Ordinal) : error.Length > 0, error);
        }

        // The connection test says the same.
        var test = await Json.ReadOkAsync(await api.PostAsync($"/api/v1/export-profiles/{profileId}/test", null));
        Assert.False(test["succeeded"]!.GetValue<bool>());
        Assert.Equal("connect", test["steps"]![0]!["step"]!.GetValue<string>());
    }

    [Theory]
    [MemberData(nameof(Destinations))]
    public async Task Running_a_day_again_overwrites_its_file(string destination)
    {
        var time = new FakeTimeProvider(FileScenario.Created);
        await using var hub = await FileHub.StartAsync(time);
        using var api = hub.Api();
        var (remote, local) = FileServers.NewDirectory(destination);
        var profileId = await FileScenario.CreateAsync(api, FileServers.Settings(destination, remote));
        await FileScenario.PostDayAsync(api);
        time.SetUtcNow(FileScenario.RunDue);
        Assert.Equal(2, await hub.PassAsync());
        Assert.Equal(FileScenario.SalesCsv, FileScenario.Text(Path.Combine(local, FileScenario.SalesFile)));

        // A sale of the 30th that arrived late, then the day run again for the sales route.
        await FileScenario.PostEventAsync(api, "new_sale", new DateTimeOffset(2026, 11, 30, 20, 0, 0, TimeSpan.Zero),
            new { orderId = 1006, firstName = "Late", lastName = "Comer", totalAmount = "7.5" });
        time.Advance(TimeSpan.FromHours(1));
        var accepted = await Json.ReadOkAsync(
            await api.PostJsonAsync($"/api/v1/export-profiles/{profileId}/runs", new { date = FileScenario.Day, route = "sales" }),
            System.Net.HttpStatusCode.Accepted);
        var run = accepted.AsArray().Single()!;
        Assert.Equal("pending", run["status"]!.GetValue<string>());
        Assert.Equal(2, run["round"]!.GetValue<int>());
        Assert.Equal(1, await hub.PassAsync());

        Assert.Equal([FileScenario.PartialsFile, FileScenario.SalesFile], FileServers.Files(local));
        Assert.Equal(FileScenario.Header
            + "1001,Jane,\"Doe, Jr.\",19.99,new_sale,400\r\n"
            + "1006,Late,Comer,7.50,new_sale,400\r\n"
            + "1003,Ann,Smith,5.00,new_sale,400\r\n",
            FileScenario.Text(Path.Combine(local, FileScenario.SalesFile)));
        var after = await Json.ReadOkAsync(await api.GetAsync($"/api/v1/export-profiles/{profileId}/runs/{run["id"]}"));
        Assert.Equal("succeeded", after["status"]!.GetValue<string>());
        Assert.Equal(3, after["rows"]!.GetValue<int>());
        Assert.Equal("manual", after["trigger"]!.GetValue<string>());
        Assert.Equal(2, (await FileScenario.RunsAsync(api, profileId)).Count);
    }

    [Fact]
    public async Task After_giveUpAfterHours_a_run_fails_and_the_notification_addresses_get_an_email()
    {
        var time = new FakeTimeProvider(FileScenario.Created);
        await using var hub = await FileHub.StartAsync(time);
        using var api = hub.Api();
        var (remote, _) = FileServers.NewDirectory(FileDestinations.Ftp);
        var profileId = await FileScenario.CreateAsync(api, FileServers.Settings(FileDestinations.Ftp, remote, port: FileServers.FreePort()), giveUpAfterHours: 1);
        await hub.WithDbAsync(async db =>
        {
            var organizationId = await db.Organizations.Select(o => o.Id).FirstAsync();
            db.ConfirmationSettings.Add(new Postback.Confirmations.ConfirmationSettings
            {
                OrganizationId = organizationId, NotificationEmails = ["ops@example.com", "files@example.com"], UpdatedAt = time.GetUtcNow(),
            });
            return await db.SaveChangesAsync();
        });

        time.SetUtcNow(FileScenario.RunDue);
        await hub.PassAsync();
        time.Advance(TimeSpan.FromMinutes(61));
        Assert.Equal(2, await hub.PassAsync());

        var runs = await FileScenario.RunsAsync(api, profileId);
        Assert.All(runs, r => Assert.Equal("failed", r!["status"]!.GetValue<string>()));
        var emails = await hub.WithDbAsync(db => db.EmailOutbox.AsNoTracking().OrderBy(e => e.Id).ToListAsync());
        Assert.Equal(4, emails.Count);
        Assert.Equal(["files@example.com", "ops@example.com"], emails.Select(e => e.Recipient).Distinct().Order());
        Assert.Contains(emails, e => e.Subject == "File export failed: Call center, sales, 2026-11-30");
        Assert.All(emails, e => Assert.Contains($"POST /api/v1/export-profiles/{profileId}/runs", e.Body, StringComparison.Ordinal));

        // A failed run is not retried any more.
        time.Advance(TimeSpan.FromHours(3));
        Assert.Equal(0, await hub.PassAsync());
    }
}
