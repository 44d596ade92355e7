using System.Security.Claims;
using Microsoft.AspNetCore.Authorization;
using Postback.Organizations;

namespace Postback.Team;

/// The three roles of a user or an API key, and the authorization policies built on them.
/// `admin` does everything; `operator` everything but users, keys and organization settings;
/// `viewer` only reads.
public static class Roles
{
    public const string Admin = "admin";
    public const string Operator = "operator";
    public const string Viewer = "viewer";

    public static readonly IReadOnlyList<string> All = [Admin, Operator, Viewer];

    public static bool IsValid(string? role) => role is Admin or Operator or Viewer;

    public static bool CanWrite(string? role) => role is Admin or Operator;

    public static string? Role(this ClaimsPrincipal user) => user.FindFirstValue(ClaimTypes.Role);

    public static bool IsAdmin(this ClaimsPrincipal user) => user.Role() == Admin;

    public static bool CanWrite(this ClaimsPrincipal user) => CanWrite(user.Role());

    /// Who did it, as the audit log names them: a user's e-mail or "key:<name>".
    public static string Actor(this ClaimsPrincipal user) =>
        user.FindFirstValue(TeamClaims.Actor) ?? "unknown";

    public static string? OnBehalfOf(this ClaimsPrincipal user) => user.FindFirstValue(TeamClaims.OnBehalfOf);
}

public static class TeamClaims
{
    public const string Actor = "postback:actor";
    public const string UserId = "postback:user";
    public const string KeyId = "postback:key";
    // The person a session or key acts for: a user's e-mail, or the e-mail of the user who made the key.
    public const string OnBehalfOf = "postback:onbehalf";
}

/// The policies every /api/v1 endpoint carries. The API group requires `Read` for GET and
/// `Write` for anything else through one method-aware policy, so an endpoint added to the
/// group is guarded without a line of its own; users, keys and organization settings add
/// `Admin` on their groups. RolePolicyTests checks every mapped endpoint against this.
public static class RolePolicies
{
    // Any role may read; only admin and operator may change anything.
    public const string ReadOrWrite = "Role:ReadOrWrite";
    public const string Admin = "Role:Admin";
    // Postback:Admin:ServerAdmins: creating organizations.
    public const string ServerAdmin = "Role:ServerAdmin";

    public static AuthorizationBuilder AddRolePolicies(this AuthorizationBuilder builder) => builder
        .AddPolicy(ReadOrWrite, p => p
            .AddAuthenticationSchemes(ApiKeyAuthenticationHandler.SchemeName)
            .RequireAuthenticatedUser()
            .RequireAssertion(c => IsRead(c.Resource) ? Roles.IsValid(c.User.Role()) : c.User.CanWrite()))
        .AddPolicy(Admin, p => p
            .AddAuthenticationSchemes(ApiKeyAuthenticationHandler.SchemeName)
            .RequireAuthenticatedUser()
            .RequireRole(Roles.Admin))
        .AddPolicy(ServerAdmin, p => p
            .AddAuthenticationSchemes(ApiKeyAuthenticationHandler.SchemeName)
            .RequireAuthenticatedUser()
            .RequireRole(Roles.Admin)
            .RequireAssertion(c => c.Resource is HttpContext http && http.RequestServices.GetRequiredService<ServerAdmins>().Includes(c.User)));

    public static bool IsReadMethod(string method) =>
        HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method);

    private static bool IsRead(object? resource) => resource switch
    {
        HttpContext http => IsReadMethod(http.Request.Method),
        // Anything else (no request to look at) is treated as a write: refuse rather than guess.
        _ => false,
    };
}
