using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Postback.Organizations;

namespace Postback.Catalog;

/// A SKU a CRM sent that no campaign product carries, kept as plain text until an operator
/// links it to a product. Once linked, later postbacks with it resolve to that product.
public sealed class ImportedSku
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    public required string Sku { get; set; }
    // The line's name when the SKU was first seen, if the CRM sent one.
    public string? Name { get; set; }
    // The product it is linked to (a productId of the catalog); null while unlinked.
    public string? ProductId { get; set; }
    // The plugin instance that first sent it (null once that instance is deleted; the key is
    // configured with the plugin instances, PluginInstanceConfiguration).
    public long? PluginInstanceId { get; set; }
    public DateTimeOffset FirstSeenAt { get; set; }
    public DateTimeOffset? LinkedAt { get; set; }
    // Set with the link, cleared once every stored order line carrying the SKU is resolved;
    // while set, the background pass (PluginMaintenance) keeps resolving.
    public bool ResolvePending { get; set; }
}

internal sealed class ImportedSkuConfiguration : IEntityTypeConfiguration<ImportedSku>
{
    public void Configure(EntityTypeBuilder<ImportedSku> e)
    {
        e.ToTable("imported_skus");
        e.Property(x => x.Sku).HasMaxLength(64);
        e.Property(x => x.Name).HasMaxLength(255);
        e.Property(x => x.ProductId).HasMaxLength(64);
        e.HasIndex(x => new { x.OrganizationId, x.Sku }).IsUnique();
        e.HasOne<Organization>().WithMany().HasForeignKey(x => x.OrganizationId).OnDelete(DeleteBehavior.Cascade);
    }
}
