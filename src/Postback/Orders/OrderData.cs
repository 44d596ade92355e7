using System.Globalization;

namespace Postback.Orders;

/// An order as the CRM knows it, after validation: every scalar field (known and extra) in its
/// canonical text form, keyed by its CRM name case-insensitively, plus the line items.
public sealed class OrderData
{
    public required long OrderId { get; init; }

    public required IReadOnlyDictionary<string, string> Fields { get; init; }

    public required IReadOnlyList<OrderItem> Items { get; init; }

    public string? Get(string name) => Fields.TryGetValue(name, out var value) ? value : null;

    public string? CustomerId => Get("customerId");

    public string? CampaignId => Get("campaignId");

    public bool IsTestCard => Get("isTestCard") == "1";

    public bool HasRecurringItem => Items.Any(i => i.Recurring);

    public string OrderIdText => OrderId.ToString(CultureInfo.InvariantCulture);
}

public sealed record OrderItem(string? ProductId, string? Sku, string? Name, int Qty, decimal? Price, bool Recurring);
