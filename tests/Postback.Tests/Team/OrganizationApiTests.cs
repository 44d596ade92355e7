using System.Net;
using Microsoft.Extensions.Time.Testing;
using Postback.Tests.Confirmations;
using Postback.Tests.Support;

namespace Postback.Tests.Team;

public sealed class OrganizationApiTests : IAsyncLifetime
{
    private readonly string _directory = DeliveryScenario.TempDirectory("org");
    private Receiver _receiver = null!;
    private SmtpSink _smtp = null!;
    private ConfirmationHub _hub = null!;

    public async Task InitializeAsync()
    {
        _receiver = await Receiver.StartAsync();
        _receiver.Respond = _ => (200, """{"status":"1","message":"ok"}""");
        _smtp = await SmtpSink.StartAsync();
        _hub = ConfirmationHub.Start(new FakeTimeProvider(DateTimeOffset.UtcNow), ConfirmationHub.SqliteConnectionString(_directory), StorageKind.Sqlite, _smtp.Port,
            new Dictionary<string, string?>
            {
                ["Postback:BootstrapAdmin:Email"] = "root@hub.example",
                ["Postback:BootstrapAdmin:Password"] = "root-password-long",
                ["Postback:Admin:ServerAdmins"] = "Root@hub.example, other@hub.example",
            });
    }

    public async Task DisposeAsync()
    {
        await _hub.DisposeAsync();
        await _smtp.DisposeAsync();
        await _receiver.DisposeAsync();
        DeliveryScenario.DeleteDirectory(_directory);
    }

    [Fact]
    public async Task The_organizations_company_id_reaches_the_confirmation_body_at_the_receiver()
    {
        var api = _hub.Api();
        var saved = await Json.ReadOkAsync(await api.PutJsonAsync("/api/v1/organization", new { name = "Komet Sales", companyId = 4242, timeZone = "Europe/Prague" }));
        Assert.Equal(4242, saved["companyId"]!.GetValue<long>());
        var read = await Json.ReadOkAsync(await api.GetAsync("/api/v1/organization"));
        Assert.Equal("Europe/Prague", read["timeZone"]!.GetValue<string>());
        Assert.Equal("Komet Sales", read["name"]!.GetValue<string>());

        await Json.ReadOkAsync(await api.PutJsonAsync("/api/v1/settings/order-confirmation-webhook", new
        {
            enabled = true, url = _receiver.Url("/confirm"), authenticationToken = "t", notificationEmails = new[] { "a@example.test" },
        }));
        var orderId = await ConfirmationWebhookTests.OrderAsync(api);
        await Json.ReadOkAsync(await api.PostAsync($"/api/v1/orders/{orderId}/confirm", null), HttpStatusCode.Accepted);
        await ConfirmationWebhookTests.SettledAsync(api, orderId, "confirmed");
        var arrived = Assert.Single(_receiver.Received);
        Assert.Equal($$"""{"companyId":4242,"orderId":{{orderId}}}""", arrived.BodyText);
    }

    [Theory]
    [InlineData("""{"name":"x","companyId":5,"timeZone":"Mars/Olympus"}""", "timeZone", 400)]
    [InlineData("""{"name":"x","companyId":0}""", "companyId", 400)]
    [InlineData("""{"name":"","companyId":5}""", "name", 400)]
    public async Task Bad_organization_settings_name_the_field(string body, string field, int status)
    {
        var before = await Json.ReadOkAsync(await _hub.Api().GetAsync("/api/v1/organization"));
        await Json.AssertProblemAsync(await _hub.Api().PutAsync("/api/v1/organization", new StringContent(body, System.Text.Encoding.UTF8, "application/json")), status, field);
        Assert.Equal(before.ToJsonString(), (await Json.ReadOkAsync(await _hub.Api().GetAsync("/api/v1/organization"))).ToJsonString());
    }

    [Fact]
    public async Task Only_a_server_admin_creates_organizations_with_their_first_admin()
    {
        // The bootstrap key was made by configuration, not by a server admin.
        Assert.Equal(HttpStatusCode.Forbidden, (await _hub.Api().PostJsonAsync("/api/v1/organizations", new { name = "B", companyId = 77, adminEmail = "b@b.example" })).StatusCode);

        // A key made by the server admin (through its session) acts for them.
        var key = await Postback.Tests.Admin.AdminSession.CreateKeyAsUserAsync(_hub, "root@hub.example", "root-password-long", "admin");
        var server = _hub.Api(key);
        var created = await Json.ReadOkAsync(await server.PostJsonAsync("/api/v1/organizations", new { name = "Branch", companyId = 78, timeZone = "America/New_York", adminEmail = "boss@branch.example" }), HttpStatusCode.Created);
        Assert.Equal(78, created["organization"]!["companyId"]!.GetValue<long>());
        Assert.Equal("admin", created["admin"]!["user"]!["role"]!.GetValue<string>());
        Assert.False(string.IsNullOrEmpty(created["admin"]!["temporaryPassword"]!.GetValue<string>()));
        await Json.AssertProblemAsync(await server.PostJsonAsync("/api/v1/organizations", new { name = "Again", companyId = 78, adminEmail = "x@branch.example" }), 409, "companyId");
        var all = (await Json.ReadOkAsync(await server.GetAsync("/api/v1/organizations"))).AsArray();
        Assert.Contains(all, o => o!["name"]!.GetValue<string>() == "Branch");
    }
}
