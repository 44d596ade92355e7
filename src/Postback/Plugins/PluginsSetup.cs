using Postback.Catalog;
using Postback.Infrastructure;

namespace Postback.Plugins;

public static class PluginsSetup
{
    /// Inbound housekeeping, and the tally of refused postbacks, written off the request path.
    public static IServiceCollection AddPlugins(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSettings<PluginOptions>(configuration, PluginOptions.Section);
        services.AddSettings<RefusedPostbackOptions>(configuration, PluginOptions.Section);
        services.AddHostedService<PluginMaintenance>();
        services.AddSingleton<RefusedPostbacks>();
        services.AddHostedService<RefusedPostbackLog>();
        services.AddSingleton<ICampaignUsage, PluginCampaignUsage>();
        return services;
    }
}
