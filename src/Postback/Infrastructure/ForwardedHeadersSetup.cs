using System.Net;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Options;

namespace Postback.Infrastructure;

/// Postback:ForwardedHeaders: the reverse proxies in front of the hub (docs/hardening.md).
public sealed class ForwardedHeadersSettings : ISettings
{
    public const string Section = "Postback:ForwardedHeaders";

    // Addresses (10.0.0.5) and networks (10.0.0.0/8) of the proxies whose X-Forwarded-For and
    // X-Forwarded-Proto are believed. Empty (the default): none is, and a client cannot pass
    // itself off as another address by sending the header.
    public List<string> KnownProxies { get; set; } = [];
    public List<string> KnownNetworks { get; set; } = [];

    public IEnumerable<IPAddress> Proxies() =>
        KnownProxies.Where(p => !string.IsNullOrWhiteSpace(p)).Select(p => IPAddress.Parse(p.Trim()));

    public IEnumerable<System.Net.IPNetwork> Networks() =>
        KnownNetworks.Where(n => !string.IsNullOrWhiteSpace(n)).Select(n => System.Net.IPNetwork.Parse(n.Trim()));

    public bool Any => Proxies().Any() || Networks().Any();

    public void Check(SettingChecks check)
    {
        foreach (var proxy in KnownProxies.Where(p => !string.IsNullOrWhiteSpace(p) && !IPAddress.TryParse(p.Trim(), out _)))
        {
            check.Fail(nameof(KnownProxies), $"'{Text.Clip(proxy, 100, "…")}' is not an IP address");
        }
        foreach (var network in KnownNetworks.Where(n => !string.IsNullOrWhiteSpace(n) && !System.Net.IPNetwork.TryParse(n.Trim(), out _)))
        {
            check.Fail(nameof(KnownNetworks), $"'{Text.Clip(network, 100, "…")}' is not a network such as 10.0.0.0/8");
        }
    }
}

/// Behind a proxy every request comes from the proxy's address: the login throttle and the
/// refused-postback limits would then key on one address for everyone, and one client could
/// lock every operator out. With the proxies named, the client's own address is used.
public static class ForwardedHeadersSetup
{
    public static IServiceCollection AddPostbackForwardedHeaders(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSettings<ForwardedHeadersSettings>(configuration, ForwardedHeadersSettings.Section);
        services.AddOptions<ForwardedHeadersOptions>().Configure<IOptions<ForwardedHeadersSettings>>((o, settings) =>
        {
            o.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto;
            // Walk back through every trusted proxy, stopping at the first address that is not one.
            o.ForwardLimit = null;
            o.KnownProxies.Clear();
            o.KnownIPNetworks.Clear();
            foreach (var proxy in settings.Value.Proxies())
            {
                o.KnownProxies.Add(proxy);
            }
            foreach (var network in settings.Value.Networks())
            {
                o.KnownIPNetworks.Add(network);
            }
        });
        return services;
    }

    /// Only with proxies named: ASP.NET Core's middleware believes every sender when its lists
    /// of known proxies are empty.
    public static WebApplication UsePostbackForwardedHeaders(this WebApplication app)
    {
        if (app.Services.GetRequiredService<IOptions<ForwardedHeadersSettings>>().Value.Any)
        {
            app.UseForwardedHeaders();
        }
        return app;
    }
}
