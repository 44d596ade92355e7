using Postback.Storage;

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
        services.AddSingleton<ISaveHook, AuditHook>();
        services.AddScoped<Bootstrap>();
        return services;
    }

    /// After the migrations: the first organization, its key and admin, on a hub's first start.
    public static async Task BootstrapOrganizationAsync(this WebApplication app)
    {
        await using var scope = app.Services.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<Bootstrap>().RunAsync();
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
