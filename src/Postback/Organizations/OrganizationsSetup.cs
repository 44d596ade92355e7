using Microsoft.AspNetCore.Authentication;

namespace Postback.Organizations;

/// API-key authentication (the default scheme of the API) and the first organization.
public static class OrganizationsSetup
{
    public static IServiceCollection AddOrganizations(this IServiceCollection services)
    {
        services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        services.AddAuthorization();
        services.AddScoped<Bootstrap>();
        return services;
    }

    /// After the migrations: the first organization and its key, on a hub's first start.
    public static async Task BootstrapOrganizationAsync(this WebApplication app)
    {
        await using var scope = app.Services.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<Bootstrap>().RunAsync();
    }
}
