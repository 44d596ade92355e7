using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.Orders;

public sealed class StoredOrder
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    public long OrderId { get; set; }
    public string? CustomerId { get; set; }
    public string? CampaignId { get; set; }
    public bool IsTestCard { get; set; }
    // The order's fields and items as JSON (see OrderJson): CRMs send any number of extra
    // fields, all of which stay usable as merge tags.
    public required string Data { get; set; }
    // Bumped on every write and checked by it: two processes merging postbacks into the same
    // order cannot overwrite each other's fields; the second one reloads and merges again.
    public long Version { get; set; }
    // Which delivery wrote each field captured from a receiver's answer (see CaptureWriter):
    // JSON, null until the first capture. The values themselves are in Data, as extra fields.
    public string? CaptureSources { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

public sealed class OrderEvent
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    // The client's idempotency key (or one we made up): unique per organization.
    public required string EventId { get; set; }
    public required string Type { get; set; }
    public long OrderKey { get; set; }
    public StoredOrder? Order { get; set; }
    public long OrderId { get; set; }
    public DateTimeOffset OccurredAt { get; set; }
    public DateTimeOffset ReceivedAt { get; set; }
}

internal sealed class StoredOrderConfiguration : IEntityTypeConfiguration<StoredOrder>
{
    public void Configure(EntityTypeBuilder<StoredOrder> e)
    {
        e.ToTable("orders");
        e.Property(x => x.CustomerId).HasMaxLength(64);
        e.Property(x => x.CampaignId).HasMaxLength(64);
        e.Property(x => x.Version).IsConcurrencyToken();
        e.HasIndex(x => new { x.OrganizationId, x.OrderId }).IsUnique();
        e.HasIndex(x => new { x.OrganizationId, x.CustomerId });
        // Retention (Postback:Retention:Orders) finds orders by age.
        e.HasIndex(x => x.UpdatedAt);
        e.HasOne<Organization>().WithMany().HasForeignKey(x => x.OrganizationId).OnDelete(DeleteBehavior.Cascade);
    }
}

internal sealed class OrderEventConfiguration : IEntityTypeConfiguration<OrderEvent>
{
    public void Configure(EntityTypeBuilder<OrderEvent> e)
    {
        e.ToTable("order_events");
        e.Property(x => x.EventId).HasMaxLength(100);
        e.Property(x => x.Type).HasMaxLength(32);
        e.HasIndex(x => new { x.OrganizationId, x.EventId }).IsUnique();
        e.HasIndex(x => x.OrderKey);
        // A file profile's day reads its events by time.
        e.HasIndex(x => new { x.OrganizationId, x.OccurredAt });
        e.HasOne(x => x.Order).WithMany().HasForeignKey(x => x.OrderKey).OnDelete(DeleteBehavior.Cascade);
    }
}

// This feature's tables on the shared context, as extension properties (`db.Orders`): PostbackDb
// names no feature, so Storage stays below the features (docs/architecture.md).
public static class OrderTables
{
    extension(PostbackDb db)
    {
        public DbSet<StoredOrder> Orders => db.Set<StoredOrder>();
        public DbSet<OrderEvent> OrderEvents => db.Set<OrderEvent>();
    }
}
