using Microsoft.AspNetCore.Mvc;
using Postback.Confirmations;
using Postback.Storage;

namespace Postback.Admin.Pages.Orders;

/// Every request the order's confirmation sent and every answer (the token masked, as stored),
/// and the alert e-mails its failures queued.
public sealed class ConfirmationModel(PostbackDb db) : AdminPageModel
{
    public long OrderId { get; private set; }
    public ConfirmationOperations.Detail Detail { get; private set; } = null!;

    public async Task<IActionResult> OnGetAsync(long orderId, CancellationToken ct)
    {
        OrderId = orderId;
        var detail = await ConfirmationOperations.GetDetailAsync(db, OrganizationId, orderId, ct);
        if (detail is null)
        {
            return NotFoundPage($"Order {orderId} has not been confirmed.");
        }
        Detail = detail;
        return Page();
    }
}
