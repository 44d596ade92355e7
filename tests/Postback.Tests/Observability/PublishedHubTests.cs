using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Postback.Tests.Support;

namespace Postback.Tests.Observability;

/// The `dotnet publish -c Release` output (made once per test run, from the build the test run
/// just made) copied to a folder of its own and started from an unrelated temporary working
/// directory, as systemd, a container or an operator's shell would start it. Its appsettings.json
/// is replaced by one without a Logging section, and the environment turns ASP.NET Core's logs
/// up to Information, so what keeps secrets and SQL out of the log is the hub's code.
public sealed class PublishedHub : IAsyncLifetime
{
    public const string PublicBaseUrl = "https://from-appsettings.example.com/";

    public string AppDirectory { get; } = DeliveryScenario.TempDirectory("published-app");
    public string DataDirectory { get; } = DeliveryScenario.TempDirectory("published-data");
    public HubProcess Hub { get; private set; } = null!;
    public Receiver Receiver { get; private set; } = null!;
    public string Secret { get; private set; } = "";
    public PrometheusText Metrics { get; private set; } = null!;

    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    public async Task InitializeAsync()
    {
        await PublishAsync(AppDirectory);
        await File.WriteAllTextAsync(Path.Combine(AppDirectory, "appsettings.json"),
            $$"""{ "Postback": { "PublicBaseUrl": "{{PublicBaseUrl}}" } }""");

        var settings = HubProcess.BaseSettings(DataDirectory);
        foreach (var key in settings.Keys.Where(k => k.StartsWith("Logging:LogLevel:", StringComparison.Ordinal)).ToList())
        {
            settings.Remove(key);
        }
        settings["Logging:LogLevel:Default"] = "Information";
        settings["Logging:LogLevel:Microsoft.AspNetCore"] = "Information";
        settings["Postback:Storage:Provider"] = "sqlite";
        settings["ConnectionStrings:Postback"] = $"Data Source={Path.Combine(DataDirectory, "postback.db")}";
        Hub = await HubProcess.StartAsync(settings, null, "published", dll: Path.Combine(AppDirectory, "Postback.dll"));

        Receiver = await Receiver.StartAsync();
        using var api = Hub.Api();
        await DeliveryScenario.CreateProfileAsync(api, Receiver.Url("/hook"));
        var instance = await Json.ReadOkAsync(await api.PostJsonAsync("/api/v1/plugin-instances", new { name = "Konnektive", kind = "konnektive" }), HttpStatusCode.Created);
        Secret = instance["secret"]!.GetValue<string>();
        var id = instance["id"]!.GetValue<long>().ToString(CultureInfo.InvariantCulture);
        Assert.StartsWith(PublicBaseUrl, instance["setup"]!["postbackUrl"]!.GetValue<string>());

        // What a CRM sends: the secret and a card number in the query string.
        using var crm = Hub.Api(key: null);
        var accepted = await crm.GetAsync($"/api/v1/plugins/webhooks/konnektive?pluginInstanceId={id}&secret={Secret}&orderId=5501&customerType=NEW_SALE&cardNumber=4111111111111111&emailAddress=card.holder%40example.com");
        Assert.True(accepted.StatusCode == HttpStatusCode.OK, await accepted.Content.ReadAsStringAsync());
        var refused = await crm.GetAsync($"/api/v1/plugins/webhooks/konnektive?pluginInstanceId={id}&secret=pbs_wrong_{Secret}&orderId=5502&customerType=NEW_SALE&cardNumber=4111111111111111");
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);

        // The delivery it caused went out: the worker's polls and claims ran meanwhile.
        await DeliveryScenario.WaitUntilAsync(async () =>
            (await DeliveryScenario.ListDeliveriesAsync(api)).Any(d => d.Status == "succeeded"), TimeSpan.FromSeconds(60), () => "the postback's delivery succeeded");
        using var scraper = Hub.Api(key: null);
        Metrics = PrometheusText.Parse(await scraper.GetStringAsync("/metrics"));
    }

    public async Task DisposeAsync()
    {
        await Hub.DisposeAsync();
        await Receiver.DisposeAsync();
        DeliveryScenario.DeleteDirectory(AppDirectory);
        DeliveryScenario.DeleteDirectory(DataDirectory);
    }

    // `dotnet publish --no-build`: the output of the Release build this test run is using, laid
    // out as published (wwwroot, appsettings.json, no project folder next to it).
    private static async Task PublishAsync(string output)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = RepositoryRoot,
        };
        foreach (var argument in (string[])["publish", Path.Combine("src", "Postback", "Postback.csproj"), "-c", "Release", "--no-build", "--nologo", "-o", output])
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"dotnet publish failed ({process.ExitCode}):\n{await stdout}\n{await stderr}");
        Assert.True(File.Exists(Path.Combine(output, "wwwroot", "admin", "admin.js")), "the publish output has no wwwroot/admin/admin.js");
    }

    private static string FindRepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Postback.slnx")))
            {
                return directory.FullName;
            }
        }
        throw new InvalidOperationException($"No Postback.slnx above {AppContext.BaseDirectory}.");
    }
}

public sealed partial class PublishedHubTests(PublishedHub published) : IClassFixture<PublishedHub>
{
    [Fact]
    public async Task The_published_hub_started_elsewhere_serves_the_admin_script_the_api_reference_and_readiness()
    {
        Assert.Contains($"Content root path: {published.AppDirectory}", published.Hub.Output);
        using var client = published.Hub.Api(key: null);
        var script = await client.GetAsync("/admin/admin.js");
        Assert.Equal(HttpStatusCode.OK, script.StatusCode);
        Assert.Contains("javascript", script.Content.Headers.ContentType?.MediaType);

        var docs = await client.GetAsync("/api/docs");
        Assert.Equal(HttpStatusCode.OK, docs.StatusCode);
        Assert.Contains("scalar.js", await docs.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/api/docs/scalar.js")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/openapi/v1.json")).StatusCode);

        var ready = await Json.ReadOkAsync(await client.GetAsync("/health/ready"));
        Assert.Equal("Healthy", ready["status"]!.GetValue<string>());
        Assert.Equal("Healthy", ready["checks"]!["migrations"]!["status"]!.GetValue<string>());
        Assert.Equal("Healthy", ready["checks"]!["database"]!["status"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health/live")).StatusCode);
    }

    [Fact]
    public void Neither_the_plugin_secret_nor_the_card_number_nor_SQL_reach_the_log()
    {
        var output = published.Hub.Output;
        Assert.False(output.Contains(published.Secret, StringComparison.Ordinal), "the plugin secret is in the hub's output");
        Assert.DoesNotContain("4111111111111111", output);
        Assert.DoesNotContain("card.holder", output);
        Assert.DoesNotContain("Request starting", output);
        Assert.DoesNotContain("Executed DbCommand", output);
        Assert.DoesNotContain("SELECT ", output);
        Assert.Empty(published.Hub.ErrorLines);
    }

    [Fact]
    public async Task The_grafana_dashboard_queries_only_metrics_the_hub_exports()
    {
        var dashboard = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(PublishedHub.RepositoryRoot, "deploy", "grafana", "postback.json")))!;
        var expressions = dashboard["panels"]!.AsArray().SelectMany(p => p!["targets"]!.AsArray()).Select(t => t!["expr"]!.GetValue<string>()).ToList();
        Assert.NotEmpty(expressions);
        var exported = published.Metrics.Names;
        // Metric names, not the label names in selectors and groupings.
        var used = expressions.Select(e => Regex.Replace(e, @"\{[^}]*\}|by \([^)]*\)", ""))
            .SelectMany(e => MetricName().Matches(e).Select(m => m.Value)).ToHashSet();
        foreach (var wanted in (string[])["postback_events_ingested_total", "postback_deliveries_total", "postback_delivery_latency_seconds_bucket",
            "postback_deliveries_pending", "postback_deliveries_oldest_due_age_seconds", "postback_endpoints_on_hold"])
        {
            Assert.Contains(wanted, used);
        }
        var unknown = used.Where(n => !exported.Contains(n)).ToList();
        Assert.True(unknown.Count == 0, $"the dashboard queries metrics the hub does not export: {string.Join(", ", unknown)}");
    }

    [Fact]
    public async Task The_systemd_unit_runs_the_published_dll_as_its_own_user_with_state_directory_hardening_and_restart()
    {
        var unit = await File.ReadAllLinesAsync(Path.Combine(PublishedHub.RepositoryRoot, "deploy", "postback.service"));
        var settings = unit.Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#') && !l.StartsWith('[') && l.Contains('='))
            .Select(l => (Key: l[..l.IndexOf('=')], Value: l[(l.IndexOf('=') + 1)..])).ToList();
        string Setting(string key) => Assert.Single(settings, s => s.Key == key).Value;

        var exec = Setting("ExecStart").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.EndsWith("dotnet", exec[0]);
        Assert.Equal("Postback.dll", Path.GetFileName(exec[1]));
        Assert.True(File.Exists(Path.Combine(published.AppDirectory, Path.GetFileName(exec[1]))), "ExecStart names a file the publish output does not have");
        Assert.Equal(Path.GetDirectoryName(exec[1]), Setting("WorkingDirectory"));
        Assert.Equal("postback", Setting("User"));
        Assert.Equal("postback", Setting("StateDirectory"));
        Assert.Contains(settings, s => s.Key == "Environment" && s.Value == "Postback__Storage__DataDirectory=/var/lib/postback");
        Assert.Equal("on-failure", Setting("Restart"));
        foreach (var (key, value) in new[] { ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"), ("PrivateTmp", "yes") })
        {
            Assert.Equal(value, Setting(key));
        }
        Assert.Equal("", Setting("CapabilityBoundingSet"));
        // The .NET JIT writes code it then runs.
        Assert.DoesNotContain(settings, s => s.Key == "MemoryDenyWriteExecute");
    }

    [Fact]
    public async Task The_image_copies_the_publish_output_and_compose_runs_two_hubs_on_postgres()
    {
        var dockerfile = await File.ReadAllLinesAsync(Path.Combine(PublishedHub.RepositoryRoot, "Dockerfile"));
        var instructions = dockerfile.Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        Assert.Matches(@"^FROM mcr\.microsoft\.com/dotnet/aspnet:10\.0", instructions[0]);
        Assert.Contains("COPY publish/ ./", instructions);
        Assert.Contains(instructions, i => i.StartsWith("USER ", StringComparison.Ordinal) && !i.EndsWith("root", StringComparison.Ordinal));
        Assert.Contains(instructions, i => i.StartsWith("ENTRYPOINT", StringComparison.Ordinal) && i.Contains("Postback.dll", StringComparison.Ordinal));

        var compose = await File.ReadAllTextAsync(Path.Combine(PublishedHub.RepositoryRoot, "deploy", "docker-compose.yml"));
        var services = ServiceNames().Matches(compose[compose.IndexOf("\nservices:", StringComparison.Ordinal)..]).Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(["postgres", "hub1", "hub2", "pgdata", "hubdata"], services);
        Assert.Equal(2, Regex.Matches(compose, @"<<: \*hub").Count);
        Assert.Contains("Postback__Storage__Provider: postgres", compose);
        Assert.Contains("Host=postgres;", compose);
        Assert.Contains("condition: service_healthy", compose);
        Assert.Contains("dockerfile: Dockerfile", compose);
    }

    [GeneratedRegex(@"\b(postback|http|dotnet|process|kestrel|aspnetcore)_[a-z0-9_]+\b")]
    private static partial Regex MetricName();

    // Top-level entries (two spaces in) below "services:" and "volumes:".
    [GeneratedRegex(@"^  ([a-z0-9]+):\s*$", RegexOptions.Multiline)]
    private static partial Regex ServiceNames();
}
