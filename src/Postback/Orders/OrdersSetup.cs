namespace Postback.Orders;

public static class OrdersSetup
{
    public static IServiceCollection AddOrders(this IServiceCollection services)
    {
        services.AddScoped<EventIngest>();
        services.AddSingleton<GroupCommit>();
        services.AddHostedService(sp => sp.GetRequiredService<GroupCommit>());
        return services;
    }
}
