using Microsoft.AspNetCore.Mvc;

namespace Postback.Admin.Pages.Team;

[AdminOnly]
public sealed class IndexModel : AdminPageModel
{
    public IActionResult OnGet() => Redirect("/admin/team/users");
}
