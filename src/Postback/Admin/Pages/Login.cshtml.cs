using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace Postback.Admin.Pages;

[AnyRoleMayPost]
public sealed class LoginModel(AdminLogin login, LoginThrottle throttle, IOptions<AdminOptions> options) : AdminPageModel
{
    public string? ReturnUrl { get; private set; }

    public bool PasswordEnabled => !string.IsNullOrEmpty(options.Value.Password);

    public void OnGet(string? returnUrl) => ReturnUrl = returnUrl;

    public async Task<IActionResult> OnPostAsync(string? secret, string? returnUrl, CancellationToken ct)
    {
        ReturnUrl = returnUrl;
        var address = HttpContext.Connection.RemoteIpAddress;
        if (throttle.IsBlocked(address))
        {
            AddError("secret", "Too many failed attempts from this address; try again in a few minutes.");
            return Page();
        }
        var principal = await login.SignInAsync(secret, ct);
        if (principal is null)
        {
            throttle.Failed(address);
            AddError("secret", PasswordEnabled ? "That is not a valid API key or password." : "That is not a valid API key.");
            return Page();
        }
        throttle.Succeeded(address);
        await HttpContext.SignInAsync(AdminSetup.Scheme, principal);
        // Only back into the admin UI: never an open redirect to another site.
        var target = returnUrl is not null && Url.IsLocalUrl(returnUrl) && returnUrl.StartsWith("/admin", StringComparison.Ordinal) ? returnUrl : "/admin";
        return LocalRedirect(target);
    }
}
