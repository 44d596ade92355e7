using System.Net;
using System.Text.RegularExpressions;
using Postback.Tests.Support;

namespace Postback.Tests.Hardening;

/// Issue 12, finding 8: an admin session is kept on the server, so logging out ends it for
/// good and sessions made with the operator password can be revoked.
public sealed partial class AdminSessionTests
{
    private const string Password = "operator-password-for-tests";

    [Fact]
    public async Task A_copied_cookie_no_longer_works_after_log_out_and_other_password_sessions_can_be_ended()
    {
        await using var hub = await HubFactory.StartAsync(settings: new Dictionary<string, string?> { ["Postback:Admin:Password"] = Password });

        // Log out: the cookie someone kept a copy of is refused afterwards.
        using var first = await Session.LoginAsync(hub, Password);
        var copied = first.Cookie;
        Assert.Equal(HttpStatusCode.OK, await first.GetStatusAsync("/admin"));
        await first.PostAsync("/admin/logout", "/admin/login", tokenFrom: "/admin");
        using var thief = Session.WithCookie(hub, copied);
        Assert.Equal(HttpStatusCode.Redirect, await thief.GetStatusAsync("/admin"));

        // Two password sessions; one ends the other.
        using var laptop = await Session.LoginAsync(hub, Password);
        using var desk = await Session.LoginAsync(hub, Password);
        Assert.Equal(HttpStatusCode.OK, await laptop.GetStatusAsync("/admin"));
        await desk.PostAsync("/admin/settings?handler=EndOtherSessions", "/admin/settings");
        Assert.Equal(HttpStatusCode.Redirect, await laptop.GetStatusAsync("/admin"));
        Assert.Equal(HttpStatusCode.OK, await desk.GetStatusAsync("/admin"));
    }

    private sealed partial class Session : IDisposable
    {
        private readonly HttpClientHandler _handler = new() { CookieContainer = new CookieContainer(), AllowAutoRedirect = false };
        private readonly HttpClient _client;

        private Session(HubFactory hub)
        {
            using var api = hub.Api(key: null);
            _client = new HttpClient(_handler) { BaseAddress = api.BaseAddress };
        }

        public string Cookie => _handler.CookieContainer.GetCookies(new Uri(_client.BaseAddress!, "/admin/"))["postback_admin"]!.Value;

        public static Session WithCookie(HubFactory hub, string value)
        {
            var session = new Session(hub);
            session._handler.CookieContainer.Add(new Uri(session._client.BaseAddress!, "/admin/"), new Cookie("postback_admin", value, "/admin"));
            return session;
        }

        public static async Task<Session> LoginAsync(HubFactory hub, string secret)
        {
            var session = new Session(hub);
            await session.PostAsync("/admin/login", "/admin", new Dictionary<string, string> { ["secret"] = secret }, tokenFrom: "/admin/login");
            return session;
        }

        public async Task<HttpStatusCode> GetStatusAsync(string path)
        {
            using var response = await _client.GetAsync(path);
            return response.StatusCode;
        }

        public async Task PostAsync(string path, string expectedRedirect, Dictionary<string, string>? fields = null, string tokenFrom = "/admin/settings")
        {
            var page = await _client.GetStringAsync(tokenFrom);
            var form = new Dictionary<string, string>(fields ?? []) { ["__RequestVerificationToken"] = TokenField().Match(page).Groups[1].Value };
            using var response = await _client.PostAsync(path, new FormUrlEncodedContent(form));
            Assert.True(response.StatusCode == HttpStatusCode.Redirect, $"POST {path} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
            Assert.Equal(expectedRedirect, response.Headers.Location?.OriginalString);
        }

        [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"")]
        private static partial Regex TokenField();

        public void Dispose()
        {
            _client.Dispose();
            _handler.Dispose();
        }
    }
}
