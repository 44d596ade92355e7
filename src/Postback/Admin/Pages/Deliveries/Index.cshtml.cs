using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.Storage;

namespace Postback.Admin.Pages.Deliveries;

public sealed class IndexModel(PostbackDb db, TimeProvider time, DeliverySignal signal) : AdminPageModel
{
    public const int PageSize = 50;

    [BindProperty(SupportsGet = true)] public string? ProfileId { get; set; }
    [BindProperty(SupportsGet = true)] public string? Status { get; set; }
    [BindProperty(SupportsGet = true)] public string? OrderId { get; set; }
    [BindProperty(SupportsGet = true)] public string? From { get; set; }
    [BindProperty(SupportsGet = true)] public string? To { get; set; }
    [BindProperty(SupportsGet = true)] public string? Before { get; set; }

    [BindProperty] public bool Confirmed { get; set; }

    public DeliveryPage Results { get; private set; } = new([], null);
    // Set when a replay waits for the operator's confirmation.
    public DeliveryOperations.ReplayPreview? Replay { get; private set; }
    public IReadOnlyDictionary<long, string> ProfileNames { get; private set; } = new Dictionary<long, string>();

    public async Task OnGetAsync(CancellationToken ct)
    {
        await LoadProfilesAsync(ct);
        var filter = ReadFilter();
        if (HasErrors)
        {
            return;
        }
        Results = await DeliveryOperations.ListAsync(db, OrganizationId, time.GetUtcNow(), filter.ProfileId, filter.Status, filter.OrderId,
            filter.From, filter.To, AdminForms.ParseLong(Before, "before", this), PageSize, ct);
    }

    /// Makes every delivery matching the filter due now (the API's replay).
    public async Task<IActionResult> OnPostReplayAsync(CancellationToken ct)
    {
        var filter = ReadFilter();
        if (filter.OrderId is not null)
        {
            AddError("orderId", "replay works on profile, status and time; open the order's deliveries and retry them one by one");
        }
        if (HasErrors)
        {
            await LoadProfilesAsync(ct);
            return Page();
        }
        var bulk = new BulkFilter(filter.ProfileId, filter.Status, filter.From, filter.To);
        if (!Confirmed)
        {
            Replay = await DeliveryOperations.PreviewReplayAsync(db, OrganizationId, bulk, time.GetUtcNow(), ct);
            await OnGetAsync(ct);
            return Page();
        }
        var count = await DeliveryOperations.ReplayAsync(db, OrganizationId, bulk, time.GetUtcNow(), signal, ct);
        Flash(count == 1 ? "Replayed 1 delivery: it is due now." : $"Replayed {count} deliveries: they are due now.");
        return Redirect("/admin/deliveries" + QueryString());
    }

    public string QueryString()
    {
        var parts = new List<string>();
        void Add(string name, string? value)
        {
            if (!string.IsNullOrWhiteSpace(value))
            {
                parts.Add($"{name}={Uri.EscapeDataString(value)}");
            }
        }
        Add("profileId", ProfileId);
        Add("status", Status);
        Add("orderId", OrderId);
        Add("from", From);
        Add("to", To);
        return parts.Count == 0 ? "" : "?" + string.Join("&", parts);
    }

    private (long? ProfileId, string? Status, long? OrderId, DateTimeOffset? From, DateTimeOffset? To) ReadFilter()
    {
        var status = string.IsNullOrWhiteSpace(Status) ? null : Status.Trim();
        if (status is not null && !DeliveryStatus.All.Contains(status))
        {
            AddError("status", $"must be one of {string.Join(", ", DeliveryStatus.All)}");
        }
        var from = AdminForms.ParseTime(From, "from", this);
        var to = AdminForms.ParseTime(To, "to", this);
        if (from > to)
        {
            AddError("from", "must not be after to");
        }
        return (AdminForms.ParseLong(ProfileId, "profileId", this), status, AdminForms.ParseLong(OrderId, "orderId", this), from, to);
    }

    private async Task LoadProfilesAsync(CancellationToken ct) =>
        ProfileNames = await db.ExportProfiles.AsNoTracking().Where(p => p.OrganizationId == OrganizationId)
            .OrderBy(p => p.Id).ToDictionaryAsync(p => p.Id, p => p.Name, ct);
}
