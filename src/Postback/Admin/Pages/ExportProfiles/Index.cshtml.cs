using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Postback.ExportProfiles;
using Postback.Infrastructure;
using Postback.Storage;

namespace Postback.Admin.Pages.ExportProfiles;

public sealed class IndexModel(PostbackDb db, TimeProvider time, IOptions<PostbackOptions> options) : AdminPageModel
{
    public IReadOnlyList<ExportProfile> Profiles { get; private set; } = [];

    [BindProperty] public string? Name { get; set; }
    [BindProperty] public string? Type { get; set; } = "postback";
    [BindProperty] public string? PostbackUrl { get; set; }
    [BindProperty] public string? ExportDelayMinutes { get; set; } = "0";
    [BindProperty] public FileForm FileSettingsForm { get; set; } = new();

    public async Task OnGetAsync(CancellationToken ct) => await LoadAsync(ct);

    public async Task<IActionResult> OnPostCreateAsync(CancellationToken ct)
    {
        var delay = AdminForms.ParseInt(ExportDelayMinutes, "exportDelayMinutes", this);
        if (!HasErrors)
        {
            // A new profile has no mappings and no routes yet: it exports nothing until routed.
            var isFile = Type == ExportTypes.File;
            var file = isFile ? FileSettingsForm.ToInput(this) : null;
            var input = new ExportProfileInput(Name, Type, isFile ? null : PostbackUrl, delay, true, [], [], File: file);
            var (profile, errors) = await ExportProfileOperations.CreateAsync(input, OrganizationId, db, time.GetUtcNow(), options.Value, ct);
            if (profile is not null)
            {
                Flash($"Created the export profile {profile.Name}. Add its field mappings and routing below.");
                return Redirect($"/admin/export-profiles/{profile.Id}");
            }
            AddErrors(errors);
        }
        await LoadAsync(ct);
        return Page();
    }

    private async Task LoadAsync(CancellationToken ct) =>
        Profiles = await db.ExportProfiles.AsNoTracking().Where(p => p.OrganizationId == OrganizationId).OrderBy(p => p.Id).ToListAsync(ct);
}
