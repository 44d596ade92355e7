using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.AspNetCore.Mvc.ViewFeatures;
using Postback.Infrastructure;
using Postback.Organizations;

namespace Postback.Admin;

/// The admin pages' base: the session's organization, and validation errors keyed by the
/// API's field paths so each can be shown next to its field.
public abstract class AdminPageModel : PageModel
{
    private readonly Dictionary<string, List<string>> _errors = new(StringComparer.Ordinal);

    public long OrganizationId => User.OrganizationId();

    public bool HasErrors => _errors.Count > 0;

    /// A 404 an operator can read (in the layout, with the navigation), not a problem+json body.
    public IActionResult NotFoundPage(string message) => new PartialViewResult
    {
        ViewName = "_NotFound",
        ViewData = new ViewDataDictionary<string>(ViewData, message),
        StatusCode = StatusCodes.Status404NotFound,
    };

    /// A one-line message shown at the top of the next page (kept across a redirect).
    public void Flash(string message) => TempData["Flash"] = message;

    public string? Error(string field) =>
        _errors.TryGetValue(field, out var reasons) ? string.Join("; ", reasons) : null;

    /// Errors whose field no input on the page shows.
    public IEnumerable<string> OtherErrors(params string[] shown) =>
        _errors.Where(e => !shown.Contains(e.Key)).SelectMany(e => e.Value.Select(r => $"{e.Key}: {r}"));

    public void AddError(string field, string reason)
    {
        if (!_errors.TryGetValue(field, out var list))
        {
            _errors[field] = list = [];
        }
        list.Add(reason);
    }

    /// Takes the API's errors; `rename` maps a path to the name of the input showing it.
    public void AddErrors(ValidationErrors errors, Func<string, string>? rename = null)
    {
        foreach (var (field, reasons) in errors.ToDictionary())
        {
            foreach (var reason in reasons)
            {
                AddError(rename?.Invoke(field) ?? field, reason);
            }
        }
    }
}
