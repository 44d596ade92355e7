using Microsoft.AspNetCore.Mvc;
using Postback.Team;

namespace Postback.Admin.Pages.Team;

/// Operator accounts: invite (a temporary password shown once), change a role, reset a
/// password, disable or enable.
[AdminOnly]
public sealed class UsersModel(UserAccounts accounts) : AdminPageModel
{
    public List<User> Users { get; private set; } = [];

    // Shown on this answer only, never again.
    public (string Email, string Password)? Temporary { get; private set; }

    [BindProperty] public string? Email { get; set; }
    [BindProperty] public string? Role { get; set; } = Roles.Operator;

    public async Task OnGetAsync(CancellationToken ct) => Users = await accounts.ListAsync(OrganizationId, ct);

    public async Task<IActionResult> OnPostInviteAsync(CancellationToken ct)
    {
        var (created, errors, _) = await accounts.CreateAsync(OrganizationId, new UserInput(Email, Role, null), ct);
        if (created is null)
        {
            AddErrors(errors);
        }
        else
        {
            Temporary = (created.User.Email, created.TemporaryPassword!);
            Email = null;
        }
        return await ShowAsync(ct);
    }

    public async Task<IActionResult> OnPostRoleAsync(long id, string? newRole, CancellationToken ct) =>
        await ChangeAsync(id, new UserChange(newRole, null), "Changed the role; the user's sessions ended.", ct);

    public async Task<IActionResult> OnPostDisableAsync(long id, CancellationToken ct) =>
        await ChangeAsync(id, new UserChange(null, true), "Disabled the account; its sessions ended.", ct);

    public async Task<IActionResult> OnPostEnableAsync(long id, CancellationToken ct) =>
        await ChangeAsync(id, new UserChange(null, false), "Enabled the account.", ct);

    public async Task<IActionResult> OnPostResetAsync(long id, CancellationToken ct)
    {
        var temporary = await accounts.ResetPasswordAsync(OrganizationId, id, ct);
        if (temporary is null)
        {
            return NotFoundPage($"There is no user {id}.");
        }
        Users = await accounts.ListAsync(OrganizationId, ct);
        Temporary = (Users.First(u => u.Id == id).Email, temporary);
        return await ShowAsync(ct);
    }

    private async Task<IActionResult> ChangeAsync(long id, UserChange change, string done, CancellationToken ct)
    {
        var (changed, errors, _) = await accounts.ChangeAsync(OrganizationId, id, change, ct);
        if (changed is not null)
        {
            Flash(done);
            return Redirect("/admin/team/users");
        }
        if (!errors.Any)
        {
            return NotFoundPage($"There is no user {id}.");
        }
        AddErrors(errors, field => "user-" + field);
        return await ShowAsync(ct);
    }

    private async Task<IActionResult> ShowAsync(CancellationToken ct)
    {
        Users = await accounts.ListAsync(OrganizationId, ct);
        Response.Headers.CacheControl = "no-store";
        return Page();
    }
}
