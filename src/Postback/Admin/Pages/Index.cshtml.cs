using Microsoft.EntityFrameworkCore;
using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.Storage;

namespace Postback.Admin.Pages;

public sealed class DashboardModel(PostbackDb db, TimeProvider time, EndpointHealth health) : AdminPageModel
{
    public sealed record FailingReceiver(string Endpoint, int Pending, int MostAttempts, DateTimeOffset? LastAttemptAt, int? LastStatusCode, string? LastError, string? Hold);

    public DateTimeOffset Now { get; private set; }
    public IReadOnlyDictionary<string, int> LastHour { get; private set; } = new Dictionary<string, int>();
    public int Pending { get; private set; }
    public int DueNow { get; private set; }
    public DateTimeOffset? OldestDue { get; private set; }
    public IReadOnlyList<FailingReceiver> Failing { get; private set; } = [];
    public int Profiles { get; private set; }

    public async Task OnGetAsync(CancellationToken ct)
    {
        var organizationId = OrganizationId;
        Now = time.GetUtcNow();
        var since = Now.AddHours(-1);
        var deliveries = db.Deliveries.AsNoTracking().Where(d => d.OrganizationId == organizationId);

        var byStatus = await deliveries.Where(d => d.CreatedAt >= since)
            .GroupBy(d => d.Status).Select(g => new { g.Key, Count = g.Count() }).ToListAsync(ct);
        LastHour = DeliveryStatus.All.ToDictionary(s => s, s => byStatus.FirstOrDefault(g => g.Key == s)?.Count ?? 0);

        var pending = deliveries.Where(d => d.Status == DeliveryStatus.Pending);
        Pending = await pending.CountAsync(ct);
        DueNow = await pending.CountAsync(d => d.DueAt <= Now, ct);
        OldestDue = Pending == 0 ? null : await pending.OrderBy(d => d.DueAt).Select(d => (DateTimeOffset?)d.DueAt).FirstOrDefaultAsync(ct);

        // A receiver is failing while deliveries to it wait for a retry: pending after an attempt.
        var failing = await pending.Where(d => d.Attempts > 0)
            .GroupBy(d => d.Endpoint)
            .Select(g => new { Endpoint = g.Key, Count = g.Count(), MostAttempts = g.Max(d => d.Attempts) })
            .OrderByDescending(g => g.Count).Take(20).ToListAsync(ct);
        var receivers = new List<FailingReceiver>();
        foreach (var f in failing)
        {
            var last = await pending.Where(d => d.Endpoint == f.Endpoint && d.Attempts > 0)
                .OrderByDescending(d => d.LastAttemptAt).Select(d => new { d.LastAttemptAt, d.LastStatusCode, d.LastError }).FirstAsync(ct);
            receivers.Add(new FailingReceiver(f.Endpoint, f.Count, f.MostAttempts, last.LastAttemptAt, last.LastStatusCode, last.LastError, health.HoldReason(f.Endpoint, Now)));
        }
        Failing = receivers;
        Profiles = await db.ExportProfiles.AsNoTracking().CountAsync(p => p.OrganizationId == organizationId, ct);
    }
}
