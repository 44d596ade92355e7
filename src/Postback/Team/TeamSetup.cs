namespace Postback.Team;

/// Roles, users, API keys, organization settings and the audit log.
public static class TeamSetup
{
    public static IServiceCollection AddTeam(this IServiceCollection services)
    {
        services.AddAuthorizationBuilder().AddRolePolicies();
        services.AddScoped<UserAccounts>();
        services.AddScoped<OrganizationSettings>();
        services.AddSingleton<ServerAdmins>();
        return services;
    }

    public static RouteGroupBuilder MapTeam(this RouteGroupBuilder api)
    {
        api.MapApiKeys();
        api.MapUsers();
        api.MapOrganizations();
        return api;
    }
}
