using Microsoft.Extensions.Time.Testing;
using Postback.ExportProfiles;
using Postback.FileExports;
using Postback.Tests.Support;

namespace Postback.Tests.FileExports;

/// POST /api/v1/export-profiles/{id}/test against each real destination: it connects, lists the
/// directory, writes a probe file and deletes it, saying what happened at each step, and leaves
/// the directory as it found it; a directory that is gone fails, naming the step.
public sealed class FileConnectionTests
{
    public static TheoryData<string> Destinations => new(FileServers.Destinations);

    [Theory]
    [MemberData(nameof(Destinations))]
    public async Task The_connection_test_writes_and_deletes_a_probe_and_leaves_the_directory_as_it_was(string destination)
    {
        await using var hub = await FileHub.StartAsync(new FakeTimeProvider(FileScenario.Created));
        using var api = hub.Api();
        var (remote, local) = FileServers.NewDirectory(destination);
        await File.WriteAllTextAsync(Path.Combine(local, "already-there.csv"), "a\r\n");
        var profileId = await FileScenario.CreateAsync(api, FileServers.Settings(destination, remote));

        var test = await Json.ReadOkAsync(await api.PostAsync($"/api/v1/export-profiles/{profileId}/test", null));
        Assert.True(test["succeeded"]!.GetValue<bool>(), test.ToJsonString());
        Assert.Equal(["connect", "list", "write", "delete"], test["steps"]!.AsArray().Select(s => s!["step"]!.GetValue<string>()));
        Assert.All(test["steps"]!.AsArray(), s => Assert.True(s!["ok"]!.GetValue<bool>()));
        Assert.StartsWith("1 file(s)", test["steps"]![1]!["detail"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(["already-there.csv"], FileServers.Files(local));

        // The directory is gone: the test fails and names the step that failed.
        File.Delete(Path.Combine(local, "already-there.csv"));
        Directory.Delete(local);
        var failed = await Json.ReadOkAsync(await api.PostAsync($"/api/v1/export-profiles/{profileId}/test", null));
        Assert.False(failed["succeeded"]!.GetValue<bool>(), failed.ToJsonString());
        var last = failed["steps"]!.AsArray().Last()!;
        Assert.False(last["ok"]!.GetValue<bool>());
        Assert.StartsWith(last["step"]!.GetValue<string>() + ": ", failed["error"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.False(Directory.Exists(local));
    }
}
