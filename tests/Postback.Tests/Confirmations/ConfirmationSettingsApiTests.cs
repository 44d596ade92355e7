using Postback.Tests.Support;

namespace Postback.Tests.Confirmations;

/// GET/PUT /api/v1/settings/order-confirmation-webhook: what is stored, and what is refused
/// (problem+json naming the field, nothing half-written).
public sealed class ConfirmationSettingsApiTests : IAsyncLifetime
{
    private const string Path = "/api/v1/settings/order-confirmation-webhook";
    private HubFactory _hub = null!;
    private HttpClient _api = null!;

    public async Task InitializeAsync()
    {
        // As in production: private and loopback addresses are refused.
        _hub = await HubFactory.StartAsync(allowPrivateNetworks: false);
        _api = _hub.Api();
    }

    public async Task DisposeAsync()
    {
        _api.Dispose();
        await _hub.DisposeAsync();
    }

    private static object Settings(
        bool enabled = true, string? url = "https://theexternalsystem.com/confirm", string? token = "tok-1", string[]? emails = null) =>
        new { enabled, url, authenticationToken = token, notificationEmails = emails ?? ["sales@example.com"] };

    [Fact]
    public async Task Settings_start_disabled_and_read_back_as_saved()
    {
        var initial = await Json.ReadOkAsync(await _api.GetAsync(Path));
        Assert.False(initial["enabled"]!.GetValue<bool>());
        Assert.Null(initial["url"]);
        Assert.Empty(initial["notificationEmails"]!.AsArray());

        string[] five = ["a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com"];
        var saved = await Json.ReadOkAsync(await _api.PutJsonAsync(Path, Settings(emails: five, token: new string('t', 50))));
        var read = await Json.ReadOkAsync(await _api.GetAsync(Path));
        Assert.Equal(saved.ToJsonString(), read.ToJsonString());
        Assert.True(read["enabled"]!.GetValue<bool>());
        Assert.Equal("https://theexternalsystem.com/confirm", read["url"]!.GetValue<string>());
        Assert.Equal(new string('t', 50), read["authenticationToken"]!.GetValue<string>());
        Assert.Equal(five, read["notificationEmails"]!.AsArray().Select(e => e!.GetValue<string>()));

        // Replacing: the token and addresses can be removed again.
        var cleared = await Json.ReadOkAsync(await _api.PutJsonAsync(Path, Settings(enabled: false, url: null, token: null, emails: [])));
        Assert.Null(cleared["authenticationToken"]);
        Assert.Null(cleared["url"]);
        Assert.Empty(cleared["notificationEmails"]!.AsArray());
    }

    [Fact]
    public async Task A_sixth_address_is_refused_and_nothing_is_stored()
    {
        await Json.ReadOkAsync(await _api.PutJsonAsync(Path, Settings()));
        string[] six = ["a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com", "f@example.com"];
        var reason = await Json.AssertProblemAsync(await _api.PutJsonAsync(Path, Settings(url: "https://other.example.com/", emails: six)), 400, "notificationEmails");
        Assert.Equal("at most 5 addresses, not 6", reason);
        var read = await Json.ReadOkAsync(await _api.GetAsync(Path));
        Assert.Equal("https://theexternalsystem.com/confirm", read["url"]!.GetValue<string>());
        Assert.Single(read["notificationEmails"]!.AsArray());
    }

    [Theory]
    [InlineData("https://theexternalsystem.com/confirm?x=1", "url", "Invalid Postback URL: cannot contain a question mark")]
    [InlineData("http://127.0.0.1:8080/confirm", "url", null)]
    [InlineData("http://169.254.169.254/latest", "url", null)]
    public async Task A_url_is_checked_like_a_postback_url_ssrf_guard_included(string url, string field, string? expected)
    {
        var reason = await Json.AssertProblemAsync(await _api.PutJsonAsync(Path, Settings(url: url)), 400, field);
        if (expected is null)
        {
            Assert.Contains("private or loopback", reason);
        }
        else
        {
            Assert.Equal(expected, reason);
        }
    }

    [Fact]
    public async Task A_token_longer_than_50_characters_and_a_bad_address_are_refused()
    {
        var response = await _api.PutJsonAsync(Path, Settings(token: new string('t', 51), emails: ["sales@example.com", "not an address"]));
        Assert.Equal("must be at most 50 characters", await Json.AssertProblemAsync(response, 400, "authenticationToken"));
        response = await _api.PutJsonAsync(Path, Settings(token: new string('t', 51), emails: ["sales@example.com", "not an address"]));
        Assert.Contains("is not an e-mail address", await Json.AssertProblemAsync(response, 400, "notificationEmails[1]"));
        var read = await Json.ReadOkAsync(await _api.GetAsync(Path));
        Assert.False(read["enabled"]!.GetValue<bool>());
    }

    [Fact]
    public async Task An_unknown_field_is_refused()
    {
        var response = await _api.PostRawAsync(Path, "{}");
        Assert.Equal(405, (int)response.StatusCode);
        response = await _api.PutAsync(Path, new StringContent("""{"enabled":true,"url":"https://x.example.com/","errorEmails":[]}""", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(400, (int)response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }
}
