using Microsoft.AspNetCore.Mvc;
using Postback.Organizations;
using Postback.Storage;
using Postback.Team;

namespace Postback.Admin.Pages.Team;

/// The organization's name, companyId (what the confirmation webhook sends) and time zone;
/// for server admins, every organization and a form to create one with its first admin.
[AdminOnly]
public sealed class OrganizationModel(OrganizationSettings settings, ServerAdmins serverAdmins) : AdminPageModel
{
    [BindProperty] public string? Name { get; set; }
    [BindProperty] public long? CompanyId { get; set; }
    [BindProperty] public string? TimeZone { get; set; }

    public bool IsServerAdmin => serverAdmins.Includes(User);
    public List<Organization> All { get; private set; } = [];
    public CreatedOrganizationView? Created { get; private set; }

    public async Task OnGetAsync(CancellationToken ct)
    {
        var organization = await settings.GetAsync(OrganizationId, ct);
        (Name, CompanyId, TimeZone) = (organization.Name, organization.CompanyId, organization.TimeZone);
        await LoadAllAsync(ct);
    }

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        var (saved, errors, _) = await settings.UpdateAsync(OrganizationId, new OrganizationInput(Name, CompanyId, TimeZone), ct);
        if (saved is not null)
        {
            Flash("Saved the organization settings.");
            return Redirect("/admin/team/organization");
        }
        AddErrors(errors);
        await LoadAllAsync(ct);
        return Page();
    }

    public async Task<IActionResult> OnPostCreateAsync(string? newName, long? newCompanyId, string? newTimeZone, string? adminEmail, CancellationToken ct)
    {
        if (!IsServerAdmin)
        {
            return StatusCode(StatusCodes.Status403Forbidden);
        }
        var (created, errors, _) = await settings.CreateAsync(new NewOrganizationInput(newName, newCompanyId, string.IsNullOrWhiteSpace(newTimeZone) ? null : newTimeZone, adminEmail), ct);
        if (created is null)
        {
            AddErrors(errors, field => "new-" + field);
        }
        Created = created;
        var organization = await settings.GetAsync(OrganizationId, ct);
        (Name, CompanyId, TimeZone) = (organization.Name, organization.CompanyId, organization.TimeZone);
        await LoadAllAsync(ct);
        Response.Headers.CacheControl = "no-store";
        return Page();
    }

    private async Task LoadAllAsync(CancellationToken ct) => All = IsServerAdmin ? await settings.ListAllAsync(ct) : [];
}
