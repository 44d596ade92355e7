using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.Storage;

namespace Postback.Admin.Pages.Deliveries;

public sealed class DetailModel(PostbackDb db, TimeProvider time, DeliverySignal signal, EndpointHealth health) : AdminPageModel
{
    public DeliveryView Delivery { get; private set; } = null!;
    public IReadOnlyList<DeliveryAttempt> Attempts { get; private set; } = [];
    public string? ProfileName { get; private set; }
    // Why a pending delivery waits beyond its due time, when its receiver's circuit holds it.
    public string? Hold { get; private set; }

    public async Task<IActionResult> OnGetAsync(long id, CancellationToken ct)
    {
        var (delivery, attempts) = await DeliveryOperations.GetAsync(db, OrganizationId, id, ct);
        if (delivery is null)
        {
            return NotFoundPage($"There is no delivery {id}.");
        }
        Delivery = DeliveryView.From(delivery, time.GetUtcNow());
        Hold = delivery.Status == DeliveryStatus.Pending ? health.HoldReason(delivery.Endpoint, time.GetUtcNow()) : null;
        Attempts = attempts;
        ProfileName = await db.ExportProfiles.AsNoTracking().Where(p => p.Id == delivery.ProfileId).Select(p => p.Name).FirstOrDefaultAsync(ct);
        return Page();
    }

    public async Task<IActionResult> OnPostRetryAsync(long id, CancellationToken ct)
    {
        var (outcome, _) = await DeliveryOperations.RetryAsync(db, OrganizationId, id, time.GetUtcNow(), signal, ct);
        if (outcome == RetryOutcome.NotFound)
        {
            return NotFoundPage($"There is no delivery {id}.");
        }
        Flash(outcome switch
        {
            RetryOutcome.Done => "The delivery is due now: it goes out within moments.",
            RetryOutcome.LaterPending => "Not retried: the profile sends this order's deliveries in order and a later one is still pending; retry once it has finished.",
            _ => "The delivery is being sent right now; wait for its answer.",
        });
        return Redirect($"/admin/deliveries/{id}");
    }

    public async Task<IActionResult> OnPostCancelAsync(long id, CancellationToken ct)
    {
        var (outcome, delivery) = await DeliveryOperations.CancelAsync(db, OrganizationId, id, time.GetUtcNow(), ct);
        if (outcome == RetryOutcome.NotFound)
        {
            return NotFoundPage($"There is no delivery {id}.");
        }
        Flash(outcome switch
        {
            RetryOutcome.Done => "Cancelled the delivery.",
            RetryOutcome.NotPending => $"The delivery is {delivery!.Status}; only a pending delivery can be cancelled.",
            _ => "The delivery is being sent right now; wait for its answer.",
        });
        return Redirect($"/admin/deliveries/{id}");
    }
}
