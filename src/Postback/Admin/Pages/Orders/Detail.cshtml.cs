using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Postback.Catalog;
using Postback.Confirmations;
using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.Orders;
using Postback.Storage;

namespace Postback.Admin.Pages.Orders;

/// An order as last received, its events, the exports each fired, and its confirmation.
public sealed class DetailModel(PostbackDb db, TimeProvider time, ConfirmationSignal signal) : AdminPageModel
{
    public OrderConfirmation? Confirmation { get; private set; }
    public bool ConfirmationEnabled { get; private set; }

    public StoredOrder Order { get; private set; } = null!;
    public JsonObject Data { get; private set; } = [];
    public OrderData Parsed { get; private set; } = null!;
    public string? CampaignName { get; private set; }

    /// The order's fields in labelled sections, in the field catalog's groups and order; fields
    /// the catalog does not list come last, as extra fields.
    public IReadOnlyList<(string Title, IReadOnlyList<(string Label, string Value)> Fields)> Sections { get; private set; } = [];

    private static readonly (string Group, string Title)[] Groups =
    [
        ("customer", "Customer"), ("billing", "Billing address"), ("shipping", "Shipping address"),
        ("totals", "Totals"), ("order", "Order"), ("campaign", "Campaign"), ("marketing", "Marketing"),
    ];
    public IReadOnlyList<CapturedField> Captured { get; private set; } = [];
    public IReadOnlyList<OrderEventView> Events { get; private set; } = [];
    public IReadOnlyList<DeliveryView> Exports { get; private set; } = [];
    public IReadOnlyDictionary<long, string> ProfileNames { get; private set; } = new Dictionary<long, string>();

    public async Task<IActionResult> OnGetAsync(long orderId, CancellationToken ct)
    {
        var row = await db.Orders.AsNoTracking().FirstOrDefaultAsync(o => o.OrganizationId == OrganizationId && o.OrderId == orderId, ct);
        if (row is null)
        {
            return NotFoundPage($"There is no order {orderId}.");
        }
        Order = row;
        var order = OrderJson.Deserialize(row.Data);
        Data = OrderJson.ToApi(order);
        Parsed = order;
        if (row.CampaignId is { } campaignId)
        {
            CampaignName = await db.Campaigns.AsNoTracking().Where(c => c.OrganizationId == OrganizationId && c.CampaignId == campaignId)
                .Select(c => c.Name).FirstOrDefaultAsync(ct);
        }
        var sections = new List<(string, IReadOnlyList<(string, string)>)>();
        foreach (var (group, title) in Groups)
        {
            var fields = Fields.FieldCatalog.OrderFields.Where(f => f.Group == group && order.Get(f.Name) is { Length: > 0 })
                .Select(f => (Label(f.Name), f.Name == "campaignId" && CampaignName is not null ? $"{CampaignName} ({order.Get(f.Name)})" : order.Get(f.Name)!)).ToList();
            if (fields.Count > 0)
            {
                sections.Add((title, fields));
            }
        }
        var extra = order.Fields.Where(f => Fields.FieldCatalog.Find(f.Key) is null).OrderBy(f => f.Key, StringComparer.Ordinal)
            .Select(f => ($"[{f.Key}]", f.Value)).ToList();
        if (extra.Count > 0)
        {
            sections.Add(("Extra fields", extra));
        }
        Sections = sections;
        Captured = OrderCaptures.List(row.CaptureSources, order);
        Events = await db.OrderEvents.AsNoTracking().Where(e => e.OrderKey == row.Id).OrderBy(e => e.Id)
            .Select(e => new OrderEventView(e.Id, e.EventId, e.Type, e.OccurredAt, e.ReceivedAt)).ToListAsync(ct);
        var now = time.GetUtcNow();
        var deliveries = await db.Deliveries.AsNoTracking().Where(d => d.OrganizationId == OrganizationId && d.OrderKey == row.Id)
            .OrderBy(d => d.Id).Take(500).ToListAsync(ct);
        Exports = deliveries.Select(d => DeliveryView.From(d, now)).ToList();
        ProfileNames = await db.ExportProfiles.AsNoTracking().Where(p => p.OrganizationId == OrganizationId)
            .ToDictionaryAsync(p => p.Id, p => p.Name, ct);
        Confirmation = await ConfirmationOperations.FindAsync(db, OrganizationId, orderId, ct);
        ConfirmationEnabled = await ConfirmationOperations.GetSettingsAsync(db, OrganizationId, ct) is { Enabled: true, Url: not null };
        return Page();
    }

    /// Seed 002: confirm the order (once); the worker sends it within moments.
    public async Task<IActionResult> OnPostConfirmAsync(long orderId, CancellationToken ct)
    {
        var result = await ConfirmationOperations.ConfirmAsync(db, OrganizationId, orderId, time.GetUtcNow(), signal, ct);
        return Answer(orderId, result, result.Outcome == ConfirmOutcome.AlreadyConfirmed
            ? "The order was confirmed before; nothing was sent again. Use Reconfirm to send it again."
            : "Confirming the order: the confirmation goes out within moments.");
    }

    /// Sends the confirmation again, once the external system is fixed.
    public async Task<IActionResult> OnPostReconfirmAsync(long orderId, CancellationToken ct)
    {
        var result = await ConfirmationOperations.ReconfirmAsync(db, OrganizationId, orderId, time.GetUtcNow(), signal, ct);
        return Answer(orderId, result, "Reconfirming the order: the confirmation goes out again within moments.");
    }

    private IActionResult Answer(long orderId, ConfirmResult result, string done)
    {
        if (result.Outcome == ConfirmOutcome.NoOrder)
        {
            return NotFoundPage(result.Reason!);
        }
        Flash(result.Outcome switch
        {
            ConfirmOutcome.NotEnabled => "The order confirmation webhook is not enabled; set it up under Settings first. Nothing was sent.",
            ConfirmOutcome.InFlight or ConfirmOutcome.Unavailable => $"Nothing changed: {result.Reason}.",
            _ => done,
        });
        return Redirect($"/admin/orders/{orderId}#confirmation");
    }

    // "shipPostalCode" → "Ship postal code".
    private static string Label(string name)
    {
        var words = System.Text.RegularExpressions.Regex.Replace(name, "(?<=[a-z0-9])([A-Z])", " $1").ToLowerInvariant();
        return char.ToUpperInvariant(words[0]) + words[1..];
    }
}
