using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;

namespace Postback.Admin.Pages;

[AnyRoleMayPost]
public sealed class LogoutModel : AdminPageModel
{
    // Logging out is a POST (with its antiforgery token), so a link elsewhere cannot do it.
    public IActionResult OnGet() => Redirect("/admin");

    public async Task<IActionResult> OnPostAsync()
    {
        await HttpContext.SignOutAsync(AdminSetup.Scheme);
        return Redirect("/admin/login");
    }
}
