using System.Net;
using Microsoft.EntityFrameworkCore;
using Postback.Team;
using Postback.Tests.Support;

namespace Postback.Tests.Team;

public sealed class UsersApiTests : IAsyncLifetime
{
    private const string AdminEmail = "Boss@Example.test";
    private HubFactory _hub = null!;

    public async Task InitializeAsync() => _hub = await HubFactory.StartAsync(settings: new Dictionary<string, string?>
    {
        ["Postback:BootstrapAdmin:Email"] = AdminEmail,
        ["Postback:BootstrapAdmin:Password"] = "a-long-enough-password",
    });

    public async Task DisposeAsync() => await _hub.DisposeAsync();

    [Fact]
    public async Task The_first_admin_comes_from_configuration_with_a_hashed_password()
    {
        var users = (await Json.ReadOkAsync(await _hub.Api().GetAsync("/api/v1/users"))).AsArray();
        var admin = Assert.Single(users)!;
        Assert.Equal(AdminEmail, admin["email"]!.GetValue<string>());
        Assert.Equal("admin", admin["role"]!.GetValue<string>());
        Assert.Null(admin["passwordHash"]);
        var hash = await _hub.WithDbAsync(db => db.Users.Select(u => u.PasswordHash).SingleAsync());
        Assert.DoesNotContain("a-long-enough-password", hash, StringComparison.Ordinal);
        Assert.True(hash.Length > 40, "an Identity PasswordHasher hash (version, salt, subkey)");
    }

    [Fact]
    public async Task An_invite_gets_a_temporary_password_once_and_roles_and_disabling_are_checked()
    {
        var invited = await Json.ReadOkAsync(await _hub.Api().PostJsonAsync("/api/v1/users", new { email = "ops@example.test", role = "operator" }), HttpStatusCode.Created);
        var temporary = invited["temporaryPassword"]!.GetValue<string>();
        Assert.True(temporary.Length >= 20);
        Assert.True(invited["user"]!["mustChangePassword"]!.GetValue<bool>());
        var id = invited["user"]!["id"]!.GetValue<long>();

        // E-mail addresses are compared without case.
        await Json.AssertProblemAsync(await _hub.Api().PostJsonAsync("/api/v1/users", new { email = "OPS@example.test", role = "viewer" }), 409, "email");
        await Json.AssertProblemAsync(await _hub.Api().PostJsonAsync("/api/v1/users", new { email = "not-an-address", role = "viewer" }), 400, "email");
        await Json.AssertProblemAsync(await _hub.Api().PostJsonAsync("/api/v1/users", new { email = "v@example.test", role = "root" }), 400, "role");
        await Json.AssertProblemAsync(await _hub.Api().PostJsonAsync("/api/v1/users", new { email = "v@example.test", role = "viewer", password = "short" }), 400, "password");

        var changed = await Json.ReadOkAsync(await _hub.Api().PutJsonAsync($"/api/v1/users/{id}", new { role = "viewer" }));
        Assert.Equal("viewer", changed["role"]!.GetValue<string>());
        var disabled = await Json.ReadOkAsync(await _hub.Api().PutJsonAsync($"/api/v1/users/{id}", new { disabled = true }));
        Assert.True(disabled["disabled"]!.GetValue<bool>());

        var reset = await Json.ReadOkAsync(await _hub.Api().PostJsonAsync($"/api/v1/users/{id}/reset-password", new { }));
        Assert.NotEqual(temporary, reset["temporaryPassword"]!.GetValue<string>());
        await Json.AssertNotFoundAsync(await _hub.Api().PutJsonAsync("/api/v1/users/999999", new { role = "viewer" }));
    }

    [Fact]
    public async Task The_last_admin_cannot_be_demoted_or_disabled()
    {
        var adminId = await _hub.WithDbAsync(db => db.Users.Where(u => u.Email == AdminEmail).Select(u => u.Id).SingleAsync());
        var reason = await Json.AssertProblemAsync(await _hub.Api().PutJsonAsync($"/api/v1/users/{adminId}", new { role = "operator" }), 409, "role");
        Assert.Contains("last enabled admin", reason, StringComparison.Ordinal);
        await Json.AssertProblemAsync(await _hub.Api().PutJsonAsync($"/api/v1/users/{adminId}", new { disabled = true }), 409, "disabled");
        Assert.Equal("admin", await _hub.WithDbAsync(db => db.Users.Where(u => u.Id == adminId).Select(u => u.Role).SingleAsync()));
    }
}
