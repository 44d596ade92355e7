using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Caching.Memory;
using Postback.Organizations;
using Postback.Storage;
using Postback.Team;

namespace Postback.Admin.Pages.Team;

/// The organization's API keys: create one (shown once, on this answer only), revoke one.
[AdminOnly]
public sealed class KeysModel(PostbackDb db, IMemoryCache cache, TimeProvider time) : AdminPageModel
{
    public List<ApiKey> Keys { get; private set; } = [];

    // Set only on the answer to a create: the page never shows it again.
    public CreatedApiKeyView? Created { get; private set; }

    [BindProperty] public string? Name { get; set; }
    [BindProperty] public string? Role { get; set; } = Roles.Operator;

    public async Task OnGetAsync(CancellationToken ct) => Keys = await ApiKeyOperations.ListAsync(db, OrganizationId, ct);

    public async Task<IActionResult> OnPostCreateAsync(CancellationToken ct)
    {
        var input = new ApiKeyInput(Name, Role);
        var errors = ApiKeyOperations.Validate(input);
        if (errors.Any)
        {
            AddErrors(errors);
        }
        else
        {
            Created = await ApiKeyOperations.CreateAsync(db, OrganizationId, input, User.OnBehalfOf() ?? User.Actor(), time, ct);
            Name = null;
        }
        Keys = await ApiKeyOperations.ListAsync(db, OrganizationId, ct);
        // No redirect: the key lives only in this answer.
        Response.Headers.CacheControl = "no-store";
        return Page();
    }

    public async Task<IActionResult> OnPostRevokeAsync(long id, CancellationToken ct)
    {
        if (!await ApiKeyOperations.RevokeAsync(db, cache, OrganizationId, id, time, ct))
        {
            return NotFoundPage($"There is no API key {id}.");
        }
        Flash("Revoked the key: calls with it are refused from now on.");
        return Redirect("/admin/team/keys");
    }
}
