using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Postback.Team;
using Postback.Tests.Support;

namespace Postback.Tests.Team;

/// One hub with a key of each role.
public sealed class RoleKeysHub : IAsyncLifetime
{
    public HubFactory Hub { get; private set; } = null!;
    public Dictionary<string, string> Keys { get; } = [];

    public async Task InitializeAsync()
    {
        Hub = await HubFactory.StartAsync();
        foreach (var role in Roles.All)
        {
            var created = await Json.ReadOkAsync(await Hub.Api().PostJsonAsync("/api/v1/api-keys", new { name = role + " key", role }), HttpStatusCode.Created);
            Keys[role] = created["key"]!.GetValue<string>();
        }
    }

    public async Task DisposeAsync() => await Hub.DisposeAsync();
}

/// Every endpoint the hub maps, called with a key of every role: a viewer is refused every
/// write, an operator every users/keys/organization change, an admin nothing. The list comes
/// from the running app, so an endpoint added tomorrow is in it.
public sealed partial class RolePolicyTests(RoleKeysHub fixture) : IClassFixture<RoleKeysHub>
{
    // Only admins see or change these, reads included.
    private static readonly string[] AdminOnlyPrefixes = ["/api/v1/api-keys", "/api/v1/users", "/api/v1/audit"];

    // Only admins listed in Postback:Admin:ServerAdmins (none in this hub): every key is refused.
    private static readonly string[] ServerAdminPrefixes = ["/api/v1/organizations"];

    private const string ServerAdmin = "server admin";

    // Authenticated by something other than an API key, on purpose.
    private static readonly string[] Anonymous = ["/api/v1/plugins/webhooks/{kind}"];

    private static string MinimumRole(string method, string path)
    {
        if (ServerAdminPrefixes.Any(p => path.TrimEnd('/') == p || path.StartsWith(p + "/", StringComparison.Ordinal)))
        {
            return ServerAdmin;
        }
        if (AdminOnlyPrefixes.Any(p => path.TrimEnd('/') == p || path.StartsWith(p + "/", StringComparison.Ordinal))
            || (path == "/api/v1/organization" && method != "GET"))
        {
            return Roles.Admin;
        }
        return method is "GET" or "HEAD" ? Roles.Viewer : Roles.Operator;
    }

    private static bool Allows(string minimum, string role) => minimum switch
    {
        Roles.Viewer => true,
        Roles.Operator => role is Roles.Operator or Roles.Admin,
        Roles.Admin => role == Roles.Admin,
        _ => false,
    };

    private List<(string Method, string Path, Endpoint Endpoint)> ApiEndpoints()
    {
        var source = fixture.Hub.Services.GetRequiredService<EndpointDataSource>();
        var list = new List<(string, string, Endpoint)>();
        foreach (var endpoint in source.Endpoints.OfType<RouteEndpoint>())
        {
            var path = "/" + (endpoint.RoutePattern.RawText ?? "").TrimStart('/');
            // The API reference under /api/docs is public (it serves the document, no data).
            if (!path.StartsWith("/api/v1/", StringComparison.Ordinal))
            {
                continue;
            }
            var methods = endpoint.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET", "POST", "PUT", "DELETE"];
            foreach (var method in methods)
            {
                list.Add((method, path, endpoint));
            }
        }
        return list;
    }

    [Fact]
    public void Every_api_endpoint_carries_a_role_policy()
    {
        var endpoints = ApiEndpoints();
        Assert.True(endpoints.Count > 30, $"only {endpoints.Count} API endpoints found; is the endpoint list being read?");
        var missing = new List<string>();
        foreach (var (method, path, endpoint) in endpoints)
        {
            if (Anonymous.Contains(path))
            {
                Assert.NotNull(endpoint.Metadata.GetMetadata<IAllowAnonymous>());
                continue;
            }
            var policies = endpoint.Metadata.GetOrderedMetadata<IAuthorizeData>().Select(a => a.Policy).ToList();
            if (!policies.Contains(RolePolicies.ReadOrWrite) && !policies.Contains(RolePolicies.Admin) && !policies.Contains(RolePolicies.ServerAdmin))
            {
                missing.Add($"{method} {path}");
            }
        }
        Assert.True(missing.Count == 0,
            "these API endpoints have no role policy: map them on the /api/v1 group in Program.cs (it requires "
            + "RolePolicies.ReadOrWrite: GET for any role, other methods for admin and operator), or add "
            + ".RequireAuthorization(RolePolicies.Admin) for admin-only ones (and list them in AdminOnlyPrefixes here):\n  "
            + string.Join("\n  ", missing));
    }

    [Fact]
    public async Task Every_role_is_refused_exactly_what_it_may_not_do_on_every_api_endpoint()
    {
        var wrong = new List<string>();
        foreach (var (method, path, _) in ApiEndpoints().Where(e => !Anonymous.Contains(e.Path)))
        {
            var minimum = MinimumRole(method, path);
            foreach (var role in Roles.All)
            {
                var response = await fixture.Hub.Api(fixture.Keys[role]).SendAsync(Request(method, path));
                var status = (int)response.StatusCode;
                var allowed = Allows(minimum, role);
                if (allowed && status is 401 or 403)
                {
                    wrong.Add($"{method} {path} as {role}: {status}, but a {role} may call it (minimum role {minimum})");
                }
                else if (!allowed && status != 403)
                {
                    wrong.Add($"{method} {path} as {role}: {status}, expected 403 (minimum role {minimum})");
                }
            }
        }
        Assert.True(wrong.Count == 0,
            "role checks are wrong for these calls; an API endpoint gets its role check from the /api/v1 group in Program.cs "
            + "(RolePolicies.ReadOrWrite) or .RequireAuthorization(RolePolicies.Admin) on its group:\n  " + string.Join("\n  ", wrong));
    }

    // Route values that match nothing stored: an allowed call answers 400 or 404, never changes anything real.
    private static HttpRequestMessage Request(string method, string path)
    {
        var url = RouteParameter().Replace(path, m => m.Groups[1].Value switch
        {
            "kind" => "konnektive",
            _ => "999999",
        });
        var request = new HttpRequestMessage(new HttpMethod(method), url);
        if (method is "POST" or "PUT" or "PATCH")
        {
            request.Content = new StringContent("{}", Encoding.UTF8, "application/json");
        }
        return request;
    }

    [GeneratedRegex(@"\{\*{0,2}([A-Za-z0-9_]+)[^}]*\}")]
    private static partial Regex RouteParameter();
}
