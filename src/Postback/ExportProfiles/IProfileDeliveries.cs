using Postback.Storage;

namespace Postback.ExportProfiles;

/// What a profile's change does to the deliveries scheduled for it, written in the
/// transaction of the change. Deliveries implements it and registers it (AddDeliveries): the
/// deliveries depend on the profiles, not the other way round.
public interface IProfileDeliveries
{
    /// The profile's pending deliveries go to its new endpoint.
    Task MoveToEndpointAsync(PostbackDb db, long profileId, string endpoint, CancellationToken ct);

    /// The deleted profile's pending deliveries are cancelled; returns how many.
    Task<int> CancelPendingAsync(PostbackDb db, long profileId, DateTimeOffset now, CancellationToken ct);
}
