using System.Net;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Postback.Catalog;
using Postback.Confirmations;
using Postback.ExportProfiles;
using Postback.Storage;
using Postback.Tests.Support;

namespace Postback.Tests.Admin;

/// The admin's edits of export profiles, campaigns and the settings take their turn at SQLite's
/// write gate, as every store's write does (they used to call SaveChanges beside it, and waited
/// out a colliding writer in SQLite's busy timeout). Each save is posted while the test holds
/// the gate: it waits there, answers nothing and stores nothing until the gate is let go.
public sealed class AdminWriteGateTests
{
    [Fact]
    public async Task An_admin_save_while_the_write_gate_is_held_waits_for_its_turn()
    {
        const string password = "operator-password-for-tests";
        await using var hub = await HubFactory.StartAsync(settings: new Dictionary<string, string?> { ["Postback:Admin:Password"] = password });
        var gate = hub.Services.GetRequiredService<WriteGate>();
        using var handler = new HttpClientHandler { CookieContainer = new CookieContainer(), AllowAutoRedirect = false };
        using var api = hub.Api(key: null);
        using var client = new HttpClient(handler) { BaseAddress = api.BaseAddress };
        using (var login = await AdminSession.PostFormAsync(client, "/admin/login", "/admin/login", new() { ["secret"] = password }))
        {
            Assert.True(login.StatusCode == HttpStatusCode.Redirect, $"logging in answered {(int)login.StatusCode}");
        }

        await SavesInTurnAsync(hub, gate, client, "/admin/campaigns", "/admin/campaigns?handler=Create",
            new() { ["CampaignId"] = "GATE-1", ["Name"] = "Held campaign" },
            db => db.Campaigns.AnyAsync(c => c.CampaignId == "GATE-1"));
        await SavesInTurnAsync(hub, gate, client, "/admin/export-profiles", "/admin/export-profiles?handler=Create",
            new() { ["Name"] = "Held profile", ["Type"] = "postback", ["PostbackUrl"] = "https://example.com/hook", ["ExportDelayMinutes"] = "0" },
            db => db.ExportProfiles.AnyAsync(p => p.Name == "Held profile"));
        await SavesInTurnAsync(hub, gate, client, "/admin/settings", "/admin/settings",
            new() { ["Enabled"] = "false", ["WebhookUrl"] = "https://example.com/confirm", ["NotificationEmails"] = "" },
            db => db.ConfirmationSettings.AnyAsync(s => s.Url == "https://example.com/confirm"));
    }

    private static async Task SavesInTurnAsync(
        HubFactory hub, WriteGate gate, HttpClient client, string page, string action, Dictionary<string, string> fields, Func<PostbackDb, Task<bool>> stored)
    {
        Task<HttpResponseMessage> save;
        using (await gate.EnterAsync(CancellationToken.None))
        {
            save = AdminSession.PostFormAsync(client, page, action, fields);
            // Either it reaches the gate, or it answers without having waited: the failure.
            await DeliveryScenario.WaitUntilAsync(() => gate.Waiting > 0 || save.IsCompleted, TimeSpan.FromSeconds(30),
                () => $"POST {action} neither reached the write gate nor answered");
            Assert.False(save.IsCompleted, $"POST {action} answered while the write gate was held");
            Assert.False(await hub.WithDbAsync(stored), $"POST {action} stored while the write gate was held");
        }
        using var response = await save;
        Assert.True(response.StatusCode == HttpStatusCode.Redirect, $"POST {action} answered {(int)response.StatusCode}");
        Assert.True(await hub.WithDbAsync(stored), $"POST {action} did not store");
    }
}
