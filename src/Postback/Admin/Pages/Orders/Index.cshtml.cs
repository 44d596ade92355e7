using System.Globalization;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Postback.Catalog;
using Postback.Orders;
using Postback.Storage;

namespace Postback.Admin.Pages.Orders;

/// Find an order by its id, a customer by theirs, or orders by the customer's name, e-mail or
/// phone; and the orders updated last, with who, what state and which event.
public sealed class IndexModel(PostbackDb db) : AdminPageModel
{
    // How many matches a text search lists, and how many stored orders it reads at most for them.
    public const int MaxMatches = 50;
    private const int MaxScanned = 500;

    public sealed record Row(long OrderId, string? CustomerId, string Name, string? Email, string? Phone, string? Status, string? LastEvent, string? Campaign, DateTimeOffset UpdatedAt);

    [BindProperty(SupportsGet = true)] public string? Find { get; set; }

    public IReadOnlyList<Row> Recent { get; private set; } = [];
    public IReadOnlyList<Row>? Matches { get; private set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        if (!string.IsNullOrWhiteSpace(Find))
        {
            var text = Find.Trim();
            if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var orderId)
                && await db.Orders.AsNoTracking().AnyAsync(o => o.OrganizationId == OrganizationId && o.OrderId == orderId, ct))
            {
                return Redirect($"/admin/orders/{orderId}");
            }
            if (await db.Orders.AsNoTracking().AnyAsync(o => o.OrganizationId == OrganizationId && o.CustomerId == text, ct))
            {
                return Redirect($"/admin/customers/{Uri.EscapeDataString(text)}");
            }
            Matches = await SearchAsync(text, ct);
            if (Matches.Count == 0)
            {
                AddError("find", $"No order, customer, name, e-mail or phone matches {text}.");
            }
        }
        var recent = await db.Orders.AsNoTracking().Where(o => o.OrganizationId == OrganizationId)
            .OrderByDescending(o => o.UpdatedAt).Take(50).ToListAsync(ct);
        Recent = await RowsAsync(recent, ct);
        return Page();
    }

    /// Name, e-mail or phone: the order data is JSON, so the database narrows by the text and
    /// the fields themselves decide (a phone matches on its digits, "(512) 555-0123" finds 5125550123).
    private async Task<IReadOnlyList<Row>> SearchAsync(string text, CancellationToken ct)
    {
        var lower = text.ToLowerInvariant();
        var digits = new string(text.Where(char.IsAsciiDigit).ToArray());
        var isPhone = digits.Length >= 7 && text.All(c => char.IsAsciiDigit(c) || c is ' ' or '-' or '(' or ')' or '+' or '.');
        var words = lower.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var probe = isPhone ? digits[^Math.Min(digits.Length, 7)..] : words.OrderByDescending(w => w.Length).First();
        var candidates = await db.Orders.AsNoTracking()
            .Where(o => o.OrganizationId == OrganizationId && o.Data.ToLower().Contains(probe))
            .OrderByDescending(o => o.UpdatedAt).Take(MaxScanned).ToListAsync(ct);
        var matched = candidates.Where(o =>
        {
            var data = OrderJson.Deserialize(o.Data);
            if (isPhone)
            {
                return new string((data.Get("phoneNumber") ?? "").Where(char.IsAsciiDigit).ToArray()).EndsWith(digits[^Math.Min(digits.Length, 10)..], StringComparison.Ordinal);
            }
            var email = data.Get("emailAddress")?.ToLowerInvariant();
            if (email is not null && email.Contains(lower, StringComparison.Ordinal))
            {
                return true;
            }
            var name = $"{data.Get("firstName")} {data.Get("lastName")} {data.Get("shipFirstName")} {data.Get("shipLastName")}".ToLowerInvariant();
            return words.All(w => name.Contains(w, StringComparison.Ordinal));
        }).Take(MaxMatches).ToList();
        return await RowsAsync(matched, ct);
    }

    private async Task<IReadOnlyList<Row>> RowsAsync(IReadOnlyList<StoredOrder> orders, CancellationToken ct)
    {
        var keys = orders.Select(o => o.Id).ToList();
        var lastEvents = keys.Count == 0 ? [] : (await db.OrderEvents.AsNoTracking().Where(e => keys.Contains(e.OrderKey))
            .GroupBy(e => e.OrderKey).Select(g => g.OrderByDescending(e => e.Id).Select(e => new { e.OrderKey, e.Type }).First())
            .ToListAsync(ct)).ToDictionary(e => e.OrderKey, e => e.Type);
        var campaignIds = orders.Where(o => o.CampaignId is not null).Select(o => o.CampaignId!).Distinct().ToList();
        var campaigns = campaignIds.Count == 0 ? [] : await db.Campaigns.AsNoTracking()
            .Where(c => c.OrganizationId == OrganizationId && campaignIds.Contains(c.CampaignId)).ToDictionaryAsync(c => c.CampaignId, c => c.Name, ct);
        return orders.Select(o =>
        {
            var data = OrderJson.Deserialize(o.Data);
            var name = $"{data.Get("firstName")} {data.Get("lastName")}".Trim();
            var campaign = o.CampaignId is null ? null : campaigns.TryGetValue(o.CampaignId, out var n) ? $"{n} ({o.CampaignId})" : o.CampaignId;
            return new Row(o.OrderId, o.CustomerId, name, data.Get("emailAddress"), data.Get("phoneNumber"), data.Get("orderStatus"),
                lastEvents.GetValueOrDefault(o.Id), campaign, o.UpdatedAt);
        }).ToList();
    }
}
