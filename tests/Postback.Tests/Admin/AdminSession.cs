using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Postback.Tests.Admin;

/// The admin UI over plain HTTP (no browser): log in with e-mail and password and post a
/// page's form with its antiforgery token, as a browser would.
public static partial class AdminSession
{
    public static async Task<HttpClient> LoginAsync<T>(WebApplicationFactory<T> hub, string email, string password) where T : class
    {
        var client = hub.CreateClient(new WebApplicationFactoryClientOptions { BaseAddress = new Uri(hub.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First(a => a.StartsWith("http://127.0.0.1", StringComparison.Ordinal))), HandleCookies = true, AllowAutoRedirect = false });
        var login = await PostFormAsync(client, "/admin/login", "/admin/login", new() { ["email"] = email, ["secret"] = password });
        // Redirects may be followed: either the redirect or the dashboard signed in as the user.
        var html = await login.Content.ReadAsStringAsync();
        Assert.True(login.StatusCode == HttpStatusCode.Redirect || html.Contains($"class=\"who\">{email} (", StringComparison.Ordinal),
            $"logging in as {email} answered {(int)login.StatusCode}: {ErrorText().Match(html).Value}");
        return client;
    }

    /// GETs `page`, takes the antiforgery token from it and POSTs the fields to `action`.
    public static async Task<HttpResponseMessage> PostFormAsync(HttpClient client, string page, string action, Dictionary<string, string> fields)
    {
        var html = await client.GetStringAsync(page);
        var token = Token().Match(html).Groups[1].Value;
        fields["__RequestVerificationToken"] = token;
        return await client.PostAsync(action, new FormUrlEncodedContent(fields));
    }

    public static async Task<string> CreateKeyAsUserAsync<T>(WebApplicationFactory<T> hub, string email, string password, string role) where T : class
    {
        var client = await LoginAsync(hub, email, password);
        var response = await PostFormAsync(client, "/admin/team/keys", "/admin/team/keys?handler=Create", new() { ["Name"] = "made by " + email, ["Role"] = role });
        var html = await response.Content.ReadAsStringAsync();
        var key = NewKey().Match(html);
        Assert.True(key.Success, $"no key on the answer ({(int)response.StatusCode})");
        return key.Groups[1].Value;
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"")]
    private static partial Regex Token();

    [GeneratedRegex("<span class=\"error\"[^>]*>[^<]*<")]
    private static partial Regex ErrorText();

    [GeneratedRegex("id=\"new-key\"[^>]*>([^<]+)<")]
    private static partial Regex NewKey();
}
