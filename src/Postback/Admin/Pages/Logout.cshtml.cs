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
        // The server forgets the session: the cookie is worthless even to someone who kept a copy.
        if (User.FindFirst(AdminSessions.IdClaim)?.Value is { } sessionId)
        {
            await AdminSessions.EndAsync(db, sessionId, ct);
        }
        await HttpContext.SignOutAsync(AdminSetup.Scheme);
        return Redirect("/admin/login");
    }
}
