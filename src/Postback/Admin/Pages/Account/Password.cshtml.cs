using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Postback.Team;

namespace Postback.Admin.Pages.Account;

/// A user's own password: required after an invite or a reset, possible any time. Changing it
/// ends the user's other sessions; this one is signed in afresh.
[AnyRoleMayPost]
public sealed class PasswordModel(UserAccounts accounts, AdminLogin login) : AdminPageModel
{
    public bool IsUser => User.FindFirst(TeamClaims.UserId) is not null;

    public bool Required => User.HasClaim(AdminLogin.MustChangeClaim, "true");

    public void OnGet()
    {
    }

    public async Task<IActionResult> OnPostAsync(string? currentPassword, string? newPassword, CancellationToken ct)
    {
        if (!IsUser)
        {
            AddError("currentPassword", "API keys and the operator password have no password to change here.");
            return Page();
        }
        var userId = long.Parse(User.FindFirst(TeamClaims.UserId)!.Value, System.Globalization.CultureInfo.InvariantCulture);
        var (changed, errors) = await accounts.ChangeOwnPasswordAsync(userId, currentPassword, newPassword, ct);
        if (!changed)
        {
            AddErrors(errors);
            return Page();
        }
        await HttpContext.SignInAsync(AdminSetup.Scheme, await login.PrincipalForUserAsync(userId, ct));
        Flash("Your password is changed.");
        return Redirect("/admin");
    }
}
