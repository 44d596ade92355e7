using System.ComponentModel;

namespace Postback.Orders;

// The bodies of POST /api/v1/events and /events/batch as the OpenAPI document shows them. The
// handlers read the JSON themselves (EventParser, OrderParser: CRM field names, loosely typed
// values such as "49.95" for a number, extra fields kept as merge tags), so these records only
// describe it; they are never deserialized.

[Description("An order event: {eventId?, type, occurredAt?, order}.")]
public sealed record EventRequest(
    [property: Description("Your id for the event (1-100 of letters, digits, . _ : -); a repeat is stored once and answered 200 with duplicate=true.")] string? EventId,
    [property: Description("The customer type: new_sale, partial, upsell, decline, refund, cancel, recurring_order, ...")] string Type,
    [property: Description("When it happened (ISO 8601); defaults to when the hub received it.")] DateTimeOffset? OccurredAt,
    OrderRequest Order);

[Description("Up to 500 events, stored together or not at all.")]
public sealed record BatchRequest(IReadOnlyList<EventRequest> Events);

[Description("An order in the CRM's field names (Konnektive / CheckoutChamp). Any other field (letters, digits, underscores) is kept and usable as a merge tag; card numbers and security codes are dropped and listed in strippedFields.")]
public sealed record OrderRequest(
    long OrderId,
    string? CustomerId,
    string? CampaignId,
    [property: Description("yyyy-MM-dd HH:mm:ss")] string? DateCreated,
    string? OrderStatus,
    string? OrderType,
    decimal? TotalAmount,
    string? CurrencyCode,
    bool? IsTestCard,
    string? FirstName,
    string? LastName,
    string? EmailAddress,
    string? PhoneNumber,
    string? Address1,
    string? Address2,
    string? City,
    string? State,
    string? PostalCode,
    string? Country,
    string? ShipFirstName,
    string? ShipLastName,
    string? ShipAddress1,
    string? ShipAddress2,
    string? ShipCity,
    string? ShipState,
    string? ShipPostalCode,
    string? ShipCountry,
    IReadOnlyList<OrderItemRequest>? Items);

public sealed record OrderItemRequest(string? ProductId, string? Sku, string? Name, int? Qty, decimal? Price, bool? Recurring);
