using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using Postback.Confirmations;
using Postback.Infrastructure;
using Postback.Storage;

namespace Postback.Admin.Pages.Settings;

/// Seed 002, "Step two": the order confirmation webhook. Saved with the API's validation, so
/// errors read as the API's and nothing half-valid is stored.
public sealed partial class IndexModel(PostbackDb db, TimeProvider time, IOptions<PostbackOptions> options) : AdminPageModel
{
    public DateTimeOffset? UpdatedAt { get; private set; }

    [BindProperty] public bool Enabled { get; set; }
    [BindProperty] public string? WebhookUrl { get; set; }
    [BindProperty] public string? AuthenticationToken { get; set; }
    // One address a line (commas work too).
    [BindProperty] public string? NotificationEmails { get; set; }

    public async Task OnGetAsync(CancellationToken ct)
    {
        var settings = await ConfirmationOperations.GetSettingsAsync(db, OrganizationId, ct);
        if (settings is not null)
        {
            Enabled = settings.Enabled;
            WebhookUrl = settings.Url;
            AuthenticationToken = settings.AuthenticationToken;
            NotificationEmails = string.Join("\n", settings.NotificationEmails);
            UpdatedAt = settings.UpdatedAt;
        }
    }

    /// Ends every other admin session of this organization, the operator password's included.
    public async Task<IActionResult> OnPostEndOtherSessionsAsync(CancellationToken ct)
    {
        var ended = await AdminSessions.EndOthersAsync(db, OrganizationId, User.FindFirst(AdminSessions.IdClaim)?.Value, ct);
        Flash(ended == 1 ? "Logged out 1 other session." : $"Logged out {ended} other sessions.");
        return Redirect("/admin/settings");
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        var emails = Separators().Split(NotificationEmails ?? "").Select(e => e.Trim()).Where(e => e.Length > 0).ToList();
        var input = new ConfirmationSettingsInput(Enabled, WebhookUrl, string.IsNullOrEmpty(AuthenticationToken) ? null : AuthenticationToken, emails);
        var (saved, errors) = await ConfirmationOperations.SaveSettingsAsync(
            db, OrganizationId, input, options.Value.Outbound.AllowPrivateNetworks, time.GetUtcNow(), ct);
        if (saved is not null)
        {
            Flash("Saved the order confirmation webhook settings.");
            return Redirect("/admin/settings");
        }
        // Each address's error names it by its line, next to the list.
        foreach (var (field, reasons) in errors.ToDictionary())
        {
            foreach (var reason in reasons)
            {
                if (EmailIndex().Match(field) is { Success: true } m)
                {
                    AddError("notificationEmails", $"address {int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) + 1}: {reason}");
                }
                else
                {
                    AddError(field, reason);
                }
            }
        }
        UpdatedAt = (await ConfirmationOperations.GetSettingsAsync(db, OrganizationId, ct))?.UpdatedAt;
        return Page();
    }

    [GeneratedRegex(@"[\r\n,;]+")]
    private static partial Regex Separators();

    [GeneratedRegex(@"^notificationEmails\[(\d+)\]$")]
    private static partial Regex EmailIndex();
}
