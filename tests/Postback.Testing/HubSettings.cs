using System.Globalization;

namespace Postback.Testing;

/// The configuration a test hub starts from, in-process (WebApplicationFactory) or as a process
/// (HubLauncher): the bootstrap key, outbound calls allowed to loopback, its storage. Keys are
/// configuration keys ("Postback:Storage:Provider"); HubLauncher turns them into environment
/// variables. Later settings replace earlier ones (With).
public static class HubSettings
{
    public const string ApiKey = "pb_test_key_0123456789abcdef";

    /// What every test hub gets.
    public static Dictionary<string, string?> Base(string? dataDirectory = null, int outboundTimeoutSeconds = 2)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Postback:BootstrapApiKey"] = ApiKey,
            ["Postback:Outbound:AllowPrivateNetworks"] = "true",
            ["Postback:Outbound:TimeoutSeconds"] = outboundTimeoutSeconds.ToString(CultureInfo.InvariantCulture),
        };
        if (dataDirectory is not null)
        {
            settings["Postback:Storage:DataDirectory"] = dataDirectory;
        }
        return settings;
    }

    /// The hub's database: a SQLite file (connectionString null: postback.db in dataDirectory)
    /// or a PostgreSQL database.
    public static Dictionary<string, string?> Storage(bool postgres, string? connectionString, string? dataDirectory = null) => new()
    {
        ["Postback:Storage:Provider"] = postgres ? "postgres" : "sqlite",
        ["ConnectionStrings:Postback"] = connectionString
            ?? (postgres || dataDirectory is null
                ? throw new ArgumentNullException(nameof(connectionString), "a PostgreSQL hub, or a SQLite hub without a data directory, needs a connection string")
                : SqliteConnectionString(dataDirectory)),
    };

    public static string SqliteConnectionString(string dataDirectory) => $"Data Source={Path.Combine(dataDirectory, "postback.db")}";

    /// Alert e-mail to an SMTP server on loopback, without TLS, polling quickly.
    public static Dictionary<string, string?> Smtp(int port) => new()
    {
        ["Postback:Smtp:Host"] = "127.0.0.1",
        ["Postback:Smtp:Port"] = port.ToString(CultureInfo.InvariantCulture),
        ["Postback:Smtp:From"] = "Postback Alerts <alerts@postback.test>",
        ["Postback:Smtp:UseTls"] = "false",
        ["Postback:Smtp:PollMilliseconds"] = "50",
        ["Postback:Smtp:TimeoutSeconds"] = "5",
    };

    /// The settings merged in order: a later one replaces an earlier one with the same key.
    public static Dictionary<string, string?> With(params IReadOnlyDictionary<string, string?>?[] layers)
    {
        var merged = new Dictionary<string, string?>();
        foreach (var layer in layers)
        {
            foreach (var (key, value) in layer ?? new Dictionary<string, string?>())
            {
                merged[key] = value;
            }
        }
        return merged;
    }
}
