namespace Postback.Orders;

// What goes into the ingest (Ingest/EventIngest, Ingest/GroupCommit) and what comes out of it,
// kept beside the order model: the event parser here makes the events, the inbound plugins
// build them too, and the ingest store (Ingest.IIngestStore, Storage/Stores/IngestStore)
// writes them.

// TraceParent: the span of the request that brought the event (ingest may run on another
// thread's group commit), stored on each delivery it schedules; see PostbackTracing.
// Inbound: what an inbound plugin's postback stores with its event, when it came that way.
public sealed record IncomingEvent(
    string? EventId, string Type, DateTimeOffset? OccurredAt, OrderData Order, string? TraceParent = null, InboundPostback? Inbound = null);

/// What an inbound postback stores in the same transaction as its event, as data
/// (Plugins/PluginWebhook fills it in; Storage/Stores/IngestStore writes it): the SKUs to import that
/// the organization does not have yet, and the postback's inbound-log row, written as IfNew
/// when the event is stored and as IfDuplicate when it was received before.
public sealed record InboundPostback(long PluginInstanceId, IReadOnlyList<SkuToImport> ImportSkus, InboundLogRow Log);

public sealed record SkuToImport(string Sku, string? Name);

public sealed record InboundLogRow(DateTimeOffset ReceivedAt, string Method, string Payload, string? CustomerType, InboundLogOutcome IfNew, InboundLogOutcome IfDuplicate);

public sealed record InboundLogOutcome(string Outcome, int StatusCode, string? Reason);

public sealed record ScheduledDelivery(long Id, long ProfileId, string ProfileName, string CustomerType, DateTimeOffset DueAt, string Status);

public sealed record IngestedEvent(OrderEvent Event, bool Duplicate, IReadOnlyList<ScheduledDelivery> Deliveries)
{
    // The SKUs an inbound postback imported (IncomingEvent.Inbound).
    public IReadOnlyList<string> ImportedSkus { get; init; } = [];
}

/// An event id was sent again with another type or order: not a retry of the same event, so
/// answering "duplicate" would hide a client bug.
public sealed class EventIdConflictException(int index, OrderEvent existing)
    : Exception($"eventId '{existing.EventId}' was already used for a {existing.Type} event of order {existing.OrderId}")
{
    public int Index { get; } = index;

    public OrderEvent Existing { get; } = existing;
}
