using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Postback.ExportProfiles;
using Postback.FileExports;
using Postback.Tests.Support;

namespace Postback.Tests.FileExports;

/// The file block of a profile through the API: every bad input is a problem naming its field
/// with nothing saved; secrets are write-only.
public sealed class FileProfileApiTests
{
    private static Dictionary<string, object?> Sftp() => new()
    {
        ["destination"] = "sftp",
        ["host"] = "files.example.com",
        ["port"] = 22,
        ["username"] = "acme",
        ["password"] = "s3cret-pass",
        ["hostKeyFingerprint"] = "SHA256:" + new string('a', 43),
        ["directory"] = "/upload",
        ["schedule"] = new { time = "00:15", timeZone = "America/New_York" },
    };

    private static object Profile(Dictionary<string, object?>? file, string type = "file", object? mapping = null, object? route = null) => new
    {
        name = "Fulfillment",
        type,
        postbackUrl = type == "postback" ? "https://example.com/hook" : null,
        mappings = new[] { mapping ?? new { exportName = "order_id", field = "orderId" } },
        routes = new[] { route ?? new { customerTypes = new[] { "new_sale" } } },
        file,
    };

    public static TheoryData<string, string, string> BadInputs => new()
    {
        { "destination", "dropbox", "file.destination" },
        { "host", "", "file.host" },
        { "host", "https://files.example.com/x", "file.host" },
        { "host", "10.0.0.5", "file.host" },
        { "directory", "", "file.directory" },
        { "directory", "upload", "file.directory" },
        { "port", "0", "file.port" },
        { "port", "65536", "file.port" },
        { "privateKey", "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----", "file.privateKey" },
        { "hostKeyFingerprint", "ab:cd:ef", "file.hostKeyFingerprint" },
        { "hostKeyFingerprint", "", "file.hostKeyFingerprint" },
        { "timeZone", "Mars/Olympus_Mons", "file.schedule.timeZone" },
        { "time", "24:00", "file.schedule.time" },
        { "fileName", "{customer}_{date}.csv", "file.fileName" },
        { "fileName", "../{date}.csv", "file.fileName" },
        { "fileName", "{date:yyyy/MM/dd}.csv", "file.fileName" },
        { "delimiter", "x", "file.delimiter" },
        { "folder", "/etc", "file.directory" },
        { "folder", "../..", "file.directory" },
        { "mapping", "header:Content-Type", "mappings[0].exportName" },
        { "routeName", "two words", "routes[0].name" },
        { "noFile", "", "file" },
        { "postbackWithFile", "", "file" },
        { "signingSecret", "", "signingSecret" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public async Task Bad_file_settings_are_a_problem_naming_the_field_and_nothing_is_saved(string what, string value, string field)
    {
        await using var hub = await HubFactory.StartAsync(allowPrivateNetworks: false,
            settings: new Dictionary<string, string?> { ["Postback:FileExports:FolderRoot"] = FileServers.FolderRoot });
        using var api = hub.Api();

        var response = await api.PostJsonAsync("/api/v1/export-profiles", BadBody(what, value));
        await Json.AssertProblemAsync(response, 400, field);
        Assert.Equal(0, await hub.WithDbAsync(db => db.ExportProfiles.CountAsync()));
    }

    /// The same bad inputs as a PUT over a stored file profile: each refused naming its field,
    /// and the stored profile is exactly as it was (secrets included).
    [Fact]
    public async Task Bad_file_settings_in_a_put_are_a_problem_and_the_stored_profile_stays_as_it_was()
    {
        await using var hub = await HubFactory.StartAsync(allowPrivateNetworks: false,
            settings: new Dictionary<string, string?> { ["Postback:FileExports:FolderRoot"] = FileServers.FolderRoot });
        using var api = hub.Api();
        var created = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/export-profiles", Profile(Sftp())), System.Net.HttpStatusCode.Created);
        var id = created["id"]!.GetValue<long>();
        var before = await (await api.GetAsync($"/api/v1/export-profiles/{id}")).Content.ReadAsStringAsync();
        var storedBefore = await hub.WithDbAsync(db => db.ExportProfiles.AsNoTracking().SingleAsync(p => p.Id == id));

        foreach (var input in BadInputs)
        {
            var (what, value, field) = ((string)input[0], (string)input[1], (string)input[2]);
            var response = await api.PutJsonAsync($"/api/v1/export-profiles/{id}", BadBody(what, value));
            await Json.AssertProblemAsync(response, 400, field);
            Assert.Equal(before, await (await api.GetAsync($"/api/v1/export-profiles/{id}")).Content.ReadAsStringAsync());
        }
        var storedAfter = await hub.WithDbAsync(db => db.ExportProfiles.AsNoTracking().SingleAsync(p => p.Id == id));
        Assert.Equal(storedBefore.File, storedAfter.File);
        Assert.Equal(storedBefore.UpdatedAt, storedAfter.UpdatedAt);
        Assert.Equal(1, await hub.WithDbAsync(db => db.ExportProfiles.CountAsync()));
    }

    /// Asking for a run: the date must be a day, already due, and the route one of the profile's.
    [Theory]
    [InlineData("{\"date\": \"30/11/2026\"}", "date")]
    [InlineData("{\"date\": \"2026-02-30\"}", "date")]
    [InlineData("{}", "date")]
    [InlineData("{\"date\": \"2999-01-01\"}", "date")]
    [InlineData("{\"date\": \"2026-11-30\", \"route\": \"nope\"}", "route")]
    public async Task A_run_for_a_bad_date_or_route_is_a_problem_and_no_run_is_made(string body, string field)
    {
        await using var hub = await HubFactory.StartAsync(settings: new Dictionary<string, string?> { ["Postback:FileExports:Enabled"] = "false" });
        using var api = hub.Api();
        var created = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/export-profiles", Profile(Sftp())), System.Net.HttpStatusCode.Created);
        var id = created["id"]!.GetValue<long>();

        var response = await api.PostAsync($"/api/v1/export-profiles/{id}/runs", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        await Json.AssertProblemAsync(response, 400, field);
        Assert.Equal(0, await hub.WithDbAsync(db => db.FileRuns.CountAsync()));
    }

    private static object BadBody(string what, string value)
    {
        var file = Sftp();
        object? mapping = null, route = null;
        var type = "file";
        switch (what)
        {
            case "port":
                file["port"] = int.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
                break;
            case "timeZone" or "time":
                file["schedule"] = what == "time" ? new { time = value, timeZone = "UTC" } : new { time = "00:15", timeZone = value };
                break;
            case "folder":
                file = new Dictionary<string, object?> { ["destination"] = "folder", ["directory"] = value };
                break;
            case "mapping":
                mapping = new { exportName = value, @static = "text/csv" };
                break;
            case "routeName":
                route = new { name = value, customerTypes = new[] { "new_sale" } };
                break;
            case "noFile":
                file = null!;
                break;
            case "postbackWithFile":
                type = "postback";
                break;
            case "signingSecret":
                break;
            default:
                file[what] = value;
                break;
        }
        return what == "signingSecret"
            ? new { name = "Fulfillment", type, signingSecret = "whsec_" + Convert.ToBase64String(new byte[32]), mappings = Array.Empty<object>(), routes = Array.Empty<object>(), file }
            : Profile(file, type, mapping, route);
    }

    [Fact]
    public async Task Passwords_and_keys_are_write_only_and_kept_when_a_profile_is_put_back()
    {
        await using var hub = await HubFactory.StartAsync();
        using var api = hub.Api();
        var file = Sftp();
        file["privateKey"] = File.ReadAllText(FileServers.Env("POSTBACK_TEST_SFTP_KEY"));
        var created = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/export-profiles", Profile(file)), System.Net.HttpStatusCode.Created);
        var id = created["id"]!.GetValue<long>();

        var response = await api.GetAsync($"/api/v1/export-profiles/{id}");
        var text = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain("s3cret-pass", text, StringComparison.Ordinal);
        Assert.DoesNotContain("PRIVATE KEY", text, StringComparison.Ordinal);
        var shown = JsonNode.Parse(text)!["file"]!;
        Assert.Equal("********", shown["password"]!.GetValue<string>());
        Assert.True(shown["hasPrivateKey"]!.GetValue<bool>());
        Assert.Null(shown["privateKey"]);
        Assert.Equal("route1", JsonNode.Parse(text)!["routes"]![0]!["name"]?.GetValue<string>() ?? "route1");

        // What GET showed, PUT back with a new directory: the secrets stay.
        var edited = JsonNode.Parse(text)!.AsObject();
        foreach (var readOnly in new[] { "id", "createdAt", "updatedAt" })
        {
            edited.Remove(readOnly);
        }
        edited["file"]!.AsObject().Remove("hasPrivateKey");
        edited["file"]!["directory"] = "/upload/new";
        await Json.ReadOkAsync(await api.PutAsync($"/api/v1/export-profiles/{id}",
            new StringContent(edited.ToJsonString(), System.Text.Encoding.UTF8, "application/json")));
        var stored = await hub.WithDbAsync(db => db.ExportProfiles.AsNoTracking().SingleAsync(p => p.Id == id));
        Assert.Equal("s3cret-pass", stored.File!.Password);
        Assert.Contains("PRIVATE KEY", stored.File.PrivateKey, StringComparison.Ordinal);
        Assert.Equal("/upload/new", stored.File.Directory);

        // An empty password removes it; the key alone still logs in.
        edited["file"]!["password"] = "";
        await Json.ReadOkAsync(await api.PutAsync($"/api/v1/export-profiles/{id}",
            new StringContent(edited.ToJsonString(), System.Text.Encoding.UTF8, "application/json")));
        stored = await hub.WithDbAsync(db => db.ExportProfiles.AsNoTracking().SingleAsync(p => p.Id == id));
        Assert.Null(stored.File!.Password);
        Assert.NotNull(stored.File.PrivateKey);
    }
}
