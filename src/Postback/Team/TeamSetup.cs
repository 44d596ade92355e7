namespace Postback.Team;

/// Roles, users, API keys, organization settings and the audit log.
public static class TeamSetup
{
    public static IServiceCollection AddTeam(this IServiceCollection services)
    {
        services.AddAuthorizationBuilder().AddRolePolicies();
        return services;
    }

    public static RouteGroupBuilder MapTeam(this RouteGroupBuilder api)
    {
        api.MapApiKeys();
        return api;
    }
}
