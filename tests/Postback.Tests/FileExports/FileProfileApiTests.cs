using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
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
        var file = Sftp();
        object? mapping = null, route = null;
        var type = "file";
        object body;
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
        body = what == "signingSecret"
            ? new { name = "Fulfillment", type, signingSecret = "whsec_" + Convert.ToBase64String(new byte[32]), mappings = Array.Empty<object>(), routes = Array.Empty<object>(), file }
            : Profile(file, type, mapping, route);

        var response = await api.PostJsonAsync("/api/v1/export-profiles", body);
        await Json.AssertProblemAsync(response, 400, field);
        Assert.Equal(0, await hub.WithDbAsync(db => db.ExportProfiles.CountAsync()));
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
