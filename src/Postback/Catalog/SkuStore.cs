namespace Postback.Catalog;

/// The writes behind linking imported SKUs to products (Storage/Stores/SkuStore.cs): the link
/// itself, and the stored order lines it resolves, each under the write gate.
public interface ISkuStore
{
    /// Links the SKU (a row made for it when none exists) to the product and resolves the
    /// stored lines that carry it; Complete is false when postbacks kept changing the same
    /// orders (the row stays ResolvePending for the background pass).
    Task<(ImportedSku Sku, int ResolvedOrders, int ResolvedLines, bool Complete)> LinkAsync(
        long organizationId, string sku, Product product, CancellationToken ct);

    /// The background pass: finishes the line resolution of links a link call left incomplete.
    /// Returns the lines it resolved.
    Task<int> ResolvePendingAsync(CancellationToken ct);

    /// Resolves, after a postback's order is committed, the SKUs it found no link for and that
    /// were linked meanwhile. Returns the SKUs it resolved.
    Task<IReadOnlyList<string>> ResolveLateLinksAsync(long organizationId, long orderId, IReadOnlyList<string> skus, CancellationToken ct);
}
