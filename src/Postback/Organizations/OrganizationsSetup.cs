using Microsoft.AspNetCore.Authentication;

namespace Postback.Organizations;

/// API-key authentication: the default scheme of the API.
public static class OrganizationsSetup
{
    public static IServiceCollection AddOrganizations(this IServiceCollection services)
    {
        services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        services.AddAuthorization();
        return services;
    }
}
