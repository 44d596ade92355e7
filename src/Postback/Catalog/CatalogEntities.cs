using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.Catalog;

public sealed class Campaign
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    public required string CampaignId { get; set; }
    public required string Name { get; set; }
    public List<Product> Products { get; set; } = [];
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

public sealed class Product
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    public long CampaignKey { get; set; }
    public required string ProductId { get; set; }
    public string? Sku { get; set; }
    public required string Name { get; set; }
    public decimal? Price { get; set; }
    public bool Recurring { get; set; }
}

internal sealed class CampaignConfiguration : IEntityTypeConfiguration<Campaign>
{
    public void Configure(EntityTypeBuilder<Campaign> e)
    {
        e.ToTable("campaigns");
        e.Property(x => x.CampaignId).HasMaxLength(64);
        e.Property(x => x.Name).HasMaxLength(200);
        e.HasIndex(x => new { x.OrganizationId, x.CampaignId }).IsUnique();
        e.HasOne<Organization>().WithMany().HasForeignKey(x => x.OrganizationId).OnDelete(DeleteBehavior.Cascade);
        e.HasMany(x => x.Products).WithOne().HasForeignKey(x => x.CampaignKey).OnDelete(DeleteBehavior.Cascade);
    }
}

internal sealed class ProductConfiguration : IEntityTypeConfiguration<Product>
{
    public void Configure(EntityTypeBuilder<Product> e)
    {
        e.ToTable("products");
        e.Property(x => x.ProductId).HasMaxLength(64);
        e.Property(x => x.Sku).HasMaxLength(64);
        e.Property(x => x.Name).HasMaxLength(255);
        e.Property(x => x.Price).HasPrecision(18, 4);
        e.HasIndex(x => new { x.CampaignKey, x.ProductId }).IsUnique();
        e.HasIndex(x => new { x.OrganizationId, x.ProductId });
        e.HasIndex(x => new { x.OrganizationId, x.Sku });
    }
}

// This feature's tables on the shared context, as extension properties (`db.Campaigns`): PostbackDb
// names no feature, so Storage stays below the features (docs/architecture.md).
public static class CatalogTables
{
    extension(PostbackDb db)
    {
        public DbSet<Campaign> Campaigns => db.Set<Campaign>();
        public DbSet<Product> Products => db.Set<Product>();
        public DbSet<ImportedSku> ImportedSkus => db.Set<ImportedSku>();
    }
}
