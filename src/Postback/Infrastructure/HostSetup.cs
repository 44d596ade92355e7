namespace Postback.Infrastructure;

/// What the hub must get right however it is started: from its own folder, by systemd from
/// /, from a container's workdir, or from a test's temporary directory.
public static partial class HostSetup
{
    /// The application's own folder (where appsettings.json and wwwroot are published), unless
    /// a content root is given explicitly (--contentRoot, ASPNETCORE_CONTENTROOT). Without this
    /// a hub started from elsewhere found neither: its log levels fell back to Information for
    /// everything and /admin/admin.js answered 404.
    public static string? ContentRoot(string[] args)
    {
        if (args.Any(a => a.TrimStart('-', '/').StartsWith("contentRoot", StringComparison.OrdinalIgnoreCase))
            || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("ASPNETCORE_CONTENTROOT"))
            || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("DOTNET_CONTENTROOT")))
        {
            return null;
        }
        return AppContext.BaseDirectory;
    }

    // Floors no configuration can lower: the request line ASP.NET Core logs at Information
    // carries the query string, and the inbound plugin endpoint takes its secret (and a CRM may
    // send card fields) there.
    private static readonly (string Category, LogLevel Level)[] Floors =
    [
        ("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.Warning),
        ("Microsoft.AspNetCore.HttpLogging", LogLevel.None),
        ("Microsoft.AspNetCore.W3CLogging", LogLevel.None),
    ];

    // Defaults that configuration may change: EF Core's SQL would otherwise be a line per poll.
    private static readonly (string Category, LogLevel Level)[] Defaults =
    [
        ("Microsoft.AspNetCore", LogLevel.Warning),
        ("Microsoft.EntityFrameworkCore", LogLevel.Warning),
        ("System.Net.Http.HttpClient", LogLevel.Warning),
        ("OpenTelemetry", LogLevel.Warning),
    ];

    public static ILoggingBuilder AddSafeLogLevels(this ILoggingBuilder logging)
    {
        // Defaults go first: a configured rule for the same category, bound later, wins.
        logging.Services.Configure<LoggerFilterOptions>(o =>
        {
            for (var i = 0; i < Defaults.Length; i++)
            {
                o.Rules.Insert(i, new LoggerFilterRule(null, Defaults[i].Category, Defaults[i].Level, null));
            }
        });
        // Floors go last, once per provider named in any rule: the most specific rule wins and,
        // among equals, the last one.
        logging.Services.PostConfigure<LoggerFilterOptions>(o =>
        {
            var providers = o.Rules.Select(r => r.ProviderName).Distinct().ToList();
            foreach (var provider in providers.Append(null).Distinct())
            {
                foreach (var (category, level) in Floors)
                {
                    var configured = o.Rules.LastOrDefault(r => r.ProviderName == provider && r.CategoryName == category)?.LogLevel;
                    o.Rules.Add(new LoggerFilterRule(provider, category, configured > level ? configured : level, null));
                }
            }
        });
        return logging;
    }
}
