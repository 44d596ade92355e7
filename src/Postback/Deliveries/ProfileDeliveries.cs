using Microsoft.EntityFrameworkCore;
using Postback.ExportProfiles;
using Postback.Storage;

namespace Postback.Deliveries;

/// A profile's pending deliveries follow its changes (ExportProfileOperations): a new URL moves
/// them, and with them the endpoint health; a deletion cancels them. Sent ones stay as the record.
internal sealed class ProfileDeliveries : IProfileDeliveries
{
    public Task MoveToEndpointAsync(PostbackDb db, long profileId, string endpoint, CancellationToken ct) =>
        db.Deliveries.Where(d => d.ProfileId == profileId && d.Status == DeliveryStatus.Pending && d.Endpoint != endpoint)
            .ExecuteUpdateAsync(s => s.SetProperty(d => d.Endpoint, endpoint), ct);

    public Task<int> CancelPendingAsync(PostbackDb db, long profileId, DateTimeOffset now, CancellationToken ct) =>
        db.Deliveries.Where(d => d.ProfileId == profileId && d.Status == DeliveryStatus.Pending)
            .ExecuteUpdateAsync(s => s
                .SetProperty(d => d.Status, DeliveryStatus.Cancelled)
                .SetProperty(d => d.CompletedAt, now)
                .SetProperty(d => d.LastError, "the export profile was deleted"), ct);
}
