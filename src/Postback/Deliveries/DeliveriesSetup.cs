using Microsoft.Extensions.Options;
using Postback.ExportProfiles;
using Postback.Infrastructure;

namespace Postback.Deliveries;

public static class DeliveriesSetup
{
    public static IServiceCollection AddDeliveries(this IServiceCollection services)
    {
        services.AddSingleton<DeliverySignal>();
        // Shared with the admin pages, which say why a receiver's deliveries are held.
        services.AddSingleton(sp =>
        {
            var delivery = sp.GetRequiredService<IOptions<PostbackOptions>>().Value.Delivery;
            return new EndpointHealth(delivery.FailureThreshold, delivery.MaxInFlightPerEndpoint);
        });
        services.AddHostedService<DeliveryWorker>();
        services.AddSingleton<IProfileDeliveries, ProfileDeliveries>();
        return services;
    }
}
