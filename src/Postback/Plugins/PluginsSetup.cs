namespace Postback.Plugins;

public static class PluginsSetup
{
    /// Inbound housekeeping, and the tally of refused postbacks, written off the request path.
    public static IServiceCollection AddPlugins(this IServiceCollection services)
    {
        services.AddHostedService<PluginMaintenance>();
        services.AddSingleton<RefusedPostbacks>();
        services.AddHostedService<RefusedPostbackLog>();
        return services;
    }
}
