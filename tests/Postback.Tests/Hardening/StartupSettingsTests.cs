using System.Text.RegularExpressions;
using Postback.Tests.Support;

namespace Postback.Tests.Hardening;

/// A wrong setting stops the hub at start with a message naming it, rather than a hub that
/// runs with a value nobody meant (a retry count of -1, a base URL the CRM cannot use).
public sealed partial class StartupSettingsTests
{
    public static TheoryData<string, string, string> BadSettings => new()
    {
        { "Postback:Confirmation:MaxAttempts", "-1", "Postback:Confirmation:MaxAttempts must be between 1 and 100" },
        { "Postback:PublicBaseUrl", "hooks.example.com/postback", "Postback:PublicBaseUrl must be an absolute http or https URL" },
        { "Postback:Storage:Provider", "mysql", "Postback:Storage:Provider must be sqlite or postgres" },
        { "Postback:Retention:BatchSize", "0", "Postback:Retention:BatchSize must be between 1 and 10000" },
        { "Postback:Delivery:ClaimBatch", "0", "Postback:Delivery:ClaimBatch must be between 1 and 10000" },
        { "Postback:Delivery:FirstRetrySeconds", "-2", "Postback:Delivery:FirstRetrySeconds must be between" },
        { "Postback:Outbound:TimeoutSeconds", "0", "Postback:Outbound:TimeoutSeconds must be between 1 and 3600" },
        { "Postback:FileExports:LeaseSeconds", "0", "Postback:FileExports:LeaseSeconds must be between 1 and 86400" },
        { "Postback:Smtp:Port", "70000", "Postback:Smtp:Port must be between 1 and 65535" },
        { "Postback:Smtp:From", "alerts at example", "Postback:Smtp:From must be an e-mail address" },
        { "Postback:Admin:SessionHours", "0", "Postback:Admin:SessionHours must be between 1 and" },
        { "Postback:Plugins:MaintenanceMinutes", "0", "Postback:Plugins:MaintenanceMinutes must be between 1 and 1440" },
        { "Postback:Plugins:RefusedPerMinutePerAddress", "0", "Postback:Plugins:RefusedPerMinutePerAddress must be between 1 and" },
        { "Postback:ForwardedHeaders:KnownProxies:0", "proxy.internal", "Postback:ForwardedHeaders:KnownProxies 'proxy.internal' is not an IP address" },
        { "Postback:BootstrapApiKey", "short", "Postback:BootstrapApiKey must be at least 16 characters" },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public void A_hub_with_a_bad_setting_does_not_start_and_names_the_setting(string key, string value, string message)
    {
        using var hub = new HubFactory(settings: new Dictionary<string, string?> { [key] = value });
        var e = Assert.ThrowsAny<Exception>(hub.StartServer);
        Assert.Contains(message, Messages(e), StringComparison.Ordinal);
    }

    [Fact]
    public void Every_bad_setting_is_named_at_once_not_one_per_restart()
    {
        using var hub = new HubFactory(settings: new Dictionary<string, string?>
        {
            ["Postback:Delivery:MaxInFlight"] = "0",
            ["Postback:Delivery:PollMilliseconds"] = "-5",
        });
        var messages = Messages(Assert.ThrowsAny<Exception>(hub.StartServer));
        Assert.Contains("Postback:Delivery:MaxInFlight must be between 1 and 100000", messages, StringComparison.Ordinal);
        Assert.Contains("Postback:Delivery:PollMilliseconds must be between 1 and 3600000", messages, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_hub_process_with_a_bad_setting_exits_non_zero_naming_it_before_creating_the_database()
    {
        var dataDirectory = Path.Combine(Path.GetTempPath(), "postback-tests", "bad-settings-" + Guid.NewGuid().ToString("N"));
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => HubProcess.StartSqliteAsync(
            dataDirectory, "bad-settings", new Dictionary<string, string?> { ["Postback:Confirmation:MaxAttempts"] = "-1" }));

        var exit = ExitCode().Match(e.Message);
        Assert.True(exit.Success, e.Message);
        Assert.NotEqual("0", exit.Groups[1].Value);
        Assert.Contains("Postback:Confirmation:MaxAttempts must be between 1 and 100; it is -1", e.Message, StringComparison.Ordinal);
        // Stopped before the migrations: the database file (made empty, with its mode, when
        // storage is registered) holds nothing.
        var database = new FileInfo(Path.Combine(dataDirectory, "postback.db"));
        Assert.True(!database.Exists || database.Length == 0, $"postback.db has {database.Length} bytes");
    }

    private static string Messages(Exception e)
    {
        var all = new List<string>();
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            all.Add(x.Message);
            if (x is AggregateException aggregate)
            {
                all.AddRange(aggregate.InnerExceptions.Select(Messages));
            }
        }
        return string.Join("\n", all);
    }

    [GeneratedRegex(@"exited with code (-?\d+)")]
    private static partial Regex ExitCode();
}
