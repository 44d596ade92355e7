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
        services.AddHttpContextAccessor();
        return services;
    }

    /// After authentication and authorization: the audit entry of a change made in bulk.
    public static IApplicationBuilder UseAuditLog(this IApplicationBuilder app) => app.UseMiddleware<AuditMiddleware>();

    public static RouteGroupBuilder MapTeam(this RouteGroupBuilder api)
    {
        api.MapApiKeys();
        api.MapUsers();
        api.MapOrganizations();
        api.MapAudit();
        return api;
    }
}
