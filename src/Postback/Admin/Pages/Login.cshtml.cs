using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace Postback.Admin.Pages;

[AnyRoleMayPost]
public sealed class LoginModel(AdminLogin login, LoginThrottle throttle, IOptions<AdminOptions> options) : AdminPageModel
{
    public string? ReturnUrl { get; private set; }

    public string? Email { get; private set; }

    public bool PasswordEnabled => !string.IsNullOrEmpty(options.Value.Password);

    public void OnGet(string? returnUrl) => ReturnUrl = returnUrl;

    public async Task<IActionResult> OnPostAsync(string? email, string? secret, string? returnUrl, CancellationToken ct)
    {
        ReturnUrl = returnUrl;
        Email = email;
        var address = HttpContext.Connection.RemoteIpAddress;
        var account = string.IsNullOrWhiteSpace(email) ? null : LoginThrottle.AccountKey(email);
        if (throttle.IsBlocked(address) || (account is not null && throttle.IsBlocked(account)))
        {
            AddError("secret", "Too many failed attempts; try again in a few minutes.");
            return Page();
        }
        // With an e-mail the secret is that account's password; without, an API key (or the
        // deprecated operator password).
        var principal = account is null ? await login.SignInAsync(secret, ct) : await login.SignInUserAsync(email!, secret, ct);
        if (principal is null)
        {
            throttle.Failed(address);
            if (account is not null)
            {
                throttle.Failed(account);
            }
            AddError("secret", account is not null ? "That e-mail and password do not match an enabled account."
                : PasswordEnabled ? "That is not a valid API key or password." : "That is not a valid API key.");
            return Page();
        }
        if (account is not null)
        {
            throttle.Succeeded(account);
        }
        throttle.Succeeded(address);
        await HttpContext.SignInAsync(AdminSetup.Scheme, principal);
        // Only back into the admin UI: never an open redirect to another site.
        var target = returnUrl is not null && Url.IsLocalUrl(returnUrl) && returnUrl.StartsWith("/admin", StringComparison.Ordinal) ? returnUrl : "/admin";
        return LocalRedirect(target);
    }
}
