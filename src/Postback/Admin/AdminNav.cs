namespace Postback.Admin;

/// The top navigation, in order. A feature adds its pages here (Plugins and Settings come next).
public static class AdminNav
{
    public sealed record Item(string Title, string Path);

    public static readonly IReadOnlyList<Item> Items =
    [
        new("Dashboard", "/admin"),
        new("Export Profiles", "/admin/export-profiles"),
        new("Deliveries", "/admin/deliveries"),
        new("Orders", "/admin/orders"),
    ];

    public static bool IsCurrent(Item item, string requestPath) =>
        item.Path == "/admin"
            ? requestPath.TrimEnd('/').Equals("/admin", StringComparison.OrdinalIgnoreCase)
            : requestPath.StartsWith(item.Path, StringComparison.OrdinalIgnoreCase);
}
