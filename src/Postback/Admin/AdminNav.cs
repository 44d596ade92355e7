namespace Postback.Admin;

/// The top navigation, in order. A feature adds its pages here.
public static class AdminNav
{
    public sealed record Item(string Title, string Path, bool AdminOnly = false);

    public static readonly IReadOnlyList<Item> Items =
    [
        new("Dashboard", "/admin"),
        new("Export Profiles", "/admin/export-profiles"),
        new("Deliveries", "/admin/deliveries"),
        new("Orders", "/admin/orders"),
        new("Plugins", "/admin/plugins"),
        new("Campaigns", "/admin/campaigns"),
        new("SKUs", "/admin/skus"),
        new("Settings", "/admin/settings"),
        new("Team", "/admin/team", AdminOnly: true),
    ];

    public static bool IsCurrent(Item item, string requestPath) =>
        item.Path == "/admin"
            ? requestPath.TrimEnd('/').Equals("/admin", StringComparison.OrdinalIgnoreCase)
            : requestPath.StartsWith(item.Path, StringComparison.OrdinalIgnoreCase);
}
