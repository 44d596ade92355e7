namespace Postback.Ingest;

public static class IngestSetup
{
    public static IServiceCollection AddIngest(this IServiceCollection services)
    {
        services.AddScoped<EventIngest>();
        services.AddSingleton<GroupCommit>();
        services.AddHostedService(sp => sp.GetRequiredService<GroupCommit>());
        return services;
    }
}
