using System.Net.Mail;
using Postback.ExportProfiles;
using Postback.Infrastructure;

namespace Postback.Confirmations;

public sealed record ConfirmationSettingsInput(bool? Enabled, string? Url, string? AuthenticationToken, IReadOnlyList<string?>? NotificationEmails);

public sealed record ValidConfirmationSettings(bool Enabled, string? Url, string? AuthenticationToken, List<string> NotificationEmails);

public static class ConfirmationSettingsValidation
{
    public const int MaxTokenLength = 50;
    public const int MaxEmails = 5;

    public static (ValidConfirmationSettings? Settings, ValidationErrors Errors) Validate(ConfirmationSettingsInput input, bool allowPrivateNetworks)
    {
        var errors = new ValidationErrors();
        var enabled = input.Enabled ?? false;

        // The same rules as an export profile's postback URL, SSRF guard included. A disabled
        // webhook may be saved without one.
        var url = string.IsNullOrWhiteSpace(input.Url) ? null : input.Url.Trim();
        if (url is not null || enabled)
        {
            if (ProfileValidation.CheckUrl(url, allowPrivateNetworks) is { } urlError)
            {
                errors.Add("url", enabled && url is null ? "is required when the webhook is enabled" : urlError);
            }
        }

        var token = string.IsNullOrEmpty(input.AuthenticationToken) ? null : input.AuthenticationToken;
        if (token is not null)
        {
            if (token.Length > MaxTokenLength)
            {
                errors.Add("authenticationToken", $"must be at most {MaxTokenLength} characters");
            }
            else if (token.Any(c => c is < ' ' or > '~'))
            {
                // It travels as an HTTP header value.
                errors.Add("authenticationToken", "must be printable ASCII (it is sent as an HTTP header)");
            }
        }

        var emails = new List<string>();
        var given = input.NotificationEmails ?? [];
        if (given.Count > MaxEmails)
        {
            errors.Add("notificationEmails", $"at most {MaxEmails} addresses, not {given.Count}");
        }
        for (var i = 0; i < given.Count; i++)
        {
            var field = $"notificationEmails[{i}]";
            var email = given[i]?.Trim();
            if (string.IsNullOrEmpty(email))
            {
                errors.Add(field, "is empty");
            }
            else if (!IsAddress(email))
            {
                errors.Add(field, $"'{Text.Clip(email, 100, "…")}' is not an e-mail address such as sales@example.com");
            }
            else if (emails.Contains(email, StringComparer.OrdinalIgnoreCase))
            {
                errors.Add(field, $"{email} is listed twice");
            }
            else
            {
                emails.Add(email);
            }
        }

        return errors.Any ? (null, errors) : (new ValidConfirmationSettings(enabled, url, token, emails), errors);
    }

    // A bare address (no display name), with a dotted domain, that SMTP can carry as it is.
    public static bool IsAddress(string s) =>
        s.Length <= 254
        && !s.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is '<' or '>' or ',' or ';' or '"')
        && MailAddress.TryCreate(s, out var address)
        && address.Address == s
        && string.IsNullOrEmpty(address.DisplayName)
        && address.Host.Contains('.')
        && !address.Host.StartsWith('.') && !address.Host.EndsWith('.');
}
