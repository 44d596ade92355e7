using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Filters;
using Microsoft.AspNetCore.Mvc.Rendering;
using Microsoft.AspNetCore.Mvc.ViewFeatures;
using Microsoft.AspNetCore.Razor.TagHelpers;
using Postback.Team;

namespace Postback.Admin;

/// A page only admins may open (GET included): users, keys, organization settings, audit.
[AttributeUsage(AttributeTargets.Class)]
public sealed class AdminOnlyAttribute : Attribute;

/// A page whose forms every signed-in role may post (logging out, changing one's own password).
[AttributeUsage(AttributeTargets.Class)]
public sealed class AnyRoleMayPostAttribute : Attribute;

/// The admin UI's role check, applied once to every page: any role may read, only admin and
/// operator may post, and [AdminOnly] pages are for admins alone. Pages add nothing of their
/// own; a page added tomorrow is covered by default.
public sealed class RolePageFilter : IAsyncPageFilter
{
    public Task OnPageHandlerSelectionAsync(PageHandlerSelectedContext context) => Task.CompletedTask;

    public async Task OnPageHandlerExecutionAsync(PageHandlerExecutingContext context, PageHandlerExecutionDelegate next)
    {
        var user = context.HttpContext.User;
        var type = context.HandlerInstance.GetType();
        // A temporary password is replaced before anything else.
        if (user.HasClaim(AdminLogin.MustChangeClaim, "true") && !type.IsDefined(typeof(AnyRoleMayPostAttribute), inherit: false))
        {
            context.Result = new RedirectResult("/admin/account/password");
            return;
        }
        if (user.Identity?.AuthenticationType == AdminSetup.Scheme && Refuses(type, user, context.HttpContext.Request.Method) is { } reason)
        {
            context.Result = new PartialViewResult
            {
                ViewName = "_Forbidden",
                ViewData = new ViewDataDictionary<string>(((Microsoft.AspNetCore.Mvc.RazorPages.PageModel)context.HandlerInstance).ViewData, reason),
                StatusCode = StatusCodes.Status403Forbidden,
            };
            return;
        }
        await next();
    }

    public static string? Refuses(Type page, System.Security.Claims.ClaimsPrincipal user, string method)
    {
        var role = user.Role() ?? "none";
        if (page.IsDefined(typeof(AdminOnlyAttribute), inherit: false) && role != Roles.Admin)
        {
            return $"Only admins may open this page; you are signed in as {Article(role)} {role}.";
        }
        if (!Team.RolePolicies.IsReadMethod(method) && !Roles.CanWrite(role) && !page.IsDefined(typeof(AnyRoleMayPostAttribute), inherit: false))
        {
            return $"A {role} may look but not change anything.";
        }
        return null;
    }

    private static string Article(string role) => role.StartsWith('a') || role.StartsWith('o') ? "an" : "a";
}

/// For a role that may not post, a posting form's buttons are left out and its fields
/// disabled (a form of buttons only is left out entirely): what the user may not do is not
/// offered, and RolePageFilter refuses it if posted anyway. `pb-any-role` keeps a form as it
/// is (log out).
[HtmlTargetElement("form", Attributes = "method")]
public sealed partial class RoleFormTagHelper : TagHelper
{
    [ViewContext]
    [HtmlAttributeNotBound]
    public ViewContext ViewContext { get; set; } = null!;

    [HtmlAttributeName("pb-any-role")]
    public bool AnyRole { get; set; }

    // After the framework's own form tag helper, which adds the antiforgery token.
    public override int Order => 1000;

    public override async Task ProcessAsync(TagHelperContext context, TagHelperOutput output)
    {
        var method = output.Attributes.TryGetAttribute("method", out var m) ? m.Value?.ToString() : null;
        var user = ViewContext.HttpContext.User;
        var anyRolePage = ViewContext.ViewData.Model?.GetType().IsDefined(typeof(AnyRoleMayPostAttribute), inherit: false) == true;
        if (AnyRole || anyRolePage || !string.Equals(method, "post", StringComparison.OrdinalIgnoreCase)
            || user.Identity?.AuthenticationType != AdminSetup.Scheme || user.CanWrite())
        {
            return;
        }
        var content = (await output.GetChildContentAsync()).GetContent();
        var withoutButtons = Button().Replace(content, "");
        if (!Field().IsMatch(withoutButtons))
        {
            output.SuppressOutput();
            return;
        }
        output.Attributes.SetAttribute("data-readonly", "true");
        output.Content.SetHtmlContent("<fieldset disabled class=\"readonly\">" + withoutButtons + "</fieldset>");
    }

    [GeneratedRegex(@"<button\b.*?</button>", RegexOptions.Singleline | RegexOptions.IgnoreCase)]
    private static partial Regex Button();

    // A field someone reads: anything but a hidden input.
    [GeneratedRegex(@"<(textarea|select)\b|<input\b(?![^>]*type=""hidden"")", RegexOptions.IgnoreCase)]
    private static partial Regex Field();
}
