using Postback.Storage;
using Postback.Team;

namespace Postback.Admin.Pages.Team;

[AdminOnly]
public sealed class AuditModel(PostbackDb db) : AdminPageModel
{
    public AuditPage Entries { get; private set; } = new([], null);

    public async Task OnGetAsync(long? before, CancellationToken ct) => Entries = await AuditApi.PageAsync(db, OrganizationId, 100, before, ct);
}
