using Microsoft.AspNetCore.Mvc;

namespace Postback.Admin.Pages;

/// Any /admin path no page has: a page saying so (with the navigation), not a JSON problem.
public sealed class NotFoundModel : AdminPageModel
{
    public IActionResult OnGet(string? path) => NotFoundPage($"There is no page /admin/{path}.");
}
