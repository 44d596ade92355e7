using System.Net;
using Microsoft.AspNetCore.HttpOverrides;

namespace Postback.Infrastructure;

/// Postback:ForwardedHeaders: the reverse proxies in front of the hub (docs/hardening.md).
public sealed class ForwardedHeadersSettings
{
    public const string Section = "Postback:ForwardedHeaders";

    // Addresses (10.0.0.5) and networks (10.0.0.0/8) of the proxies whose X-Forwarded-For and
    // X-Forwarded-Proto are believed. Empty (the default): none is, and a client cannot pass
    // itself off as another address by sending the header.
    public List<string> KnownProxies { get; set; } = [];
    public List<string> KnownNetworks { get; set; } = [];
}

/// Behind a proxy every request comes from the proxy's address: the login throttle and the
/// refused-postback limits would then key on one address for everyone, and one client could
/// lock every operator out. With the proxies named, the client's own address is used.
public static class ForwardedHeadersSetup
{
    public static IServiceCollection AddPostbackForwardedHeaders(this IServiceCollection services, IConfiguration configuration)
    {
        var settings = Settings(configuration);
        services.Configure<ForwardedHeadersOptions>(o =>
        {
            o.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto;
            // Walk back through every trusted proxy, stopping at the first address that is not one.
            o.ForwardLimit = null;
            o.KnownProxies.Clear();
            o.KnownIPNetworks.Clear();
            foreach (var proxy in settings.KnownProxies.Where(p => !string.IsNullOrWhiteSpace(p)))
            {
                o.KnownProxies.Add(IPAddress.TryParse(proxy.Trim(), out var address)
                    ? address
                    : throw new InvalidOperationException($"{ForwardedHeadersSettings.Section}:KnownProxies: '{proxy}' is not an IP address."));
            }
            foreach (var network in settings.KnownNetworks.Where(n => !string.IsNullOrWhiteSpace(n)))
            {
                o.KnownIPNetworks.Add(System.Net.IPNetwork.TryParse(network.Trim(), out var parsed)
                    ? parsed
                    : throw new InvalidOperationException($"{ForwardedHeadersSettings.Section}:KnownNetworks: '{network}' is not a network such as 10.0.0.0/8."));
            }
        });
        return services;
    }

    /// Only with proxies named: ASP.NET Core's middleware believes every sender when its lists
    /// of known proxies are empty.
    public static WebApplication UsePostbackForwardedHeaders(this WebApplication app)
    {
        var settings = Settings(app.Configuration);
        if (settings.KnownProxies.Any(p => !string.IsNullOrWhiteSpace(p)) || settings.KnownNetworks.Any(n => !string.IsNullOrWhiteSpace(n)))
        {
            app.UseForwardedHeaders();
        }
        return app;
    }

    private static ForwardedHeadersSettings Settings(IConfiguration configuration) =>
        configuration.GetSection(ForwardedHeadersSettings.Section).Get<ForwardedHeadersSettings>() ?? new ForwardedHeadersSettings();
}
