using Microsoft.EntityFrameworkCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;

namespace Postback.Admin.Pages;

[AnyRoleMayPost]
public sealed class LogoutModel(Storage.PostbackDb db) : AdminPageModel
{
    // Logging out is a POST (with its antiforgery token), so a link elsewhere cannot do it.
    public IActionResult OnGet() => Redirect("/admin");

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        // A user's log out ends the session on the server too (a copied cookie stops working):
        // it bumps the account's session version, which ends the user's other sessions as well.
        if (User.FindFirst(Postback.Team.TeamClaims.UserId)?.Value is { } userId)
        {
            var id = long.Parse(userId, System.Globalization.CultureInfo.InvariantCulture);
            await db.Users.Where(u => u.Id == id).ExecuteUpdateAsync(s => s.SetProperty(u => u.SessionVersion, u => u.SessionVersion + 1), ct);
        }
        await HttpContext.SignOutAsync(AdminSetup.Scheme);
        return Redirect("/admin/login");
    }
}
