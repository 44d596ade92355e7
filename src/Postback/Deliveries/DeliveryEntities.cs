using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Postback.Orders;
using Postback.Storage;

namespace Postback.Deliveries;

public static class DeliveryStatus
{
    public const string Pending = "pending";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";
    // Went out with an earlier delivery of the same order and profile (coalescing profiles).
    public const string Coalesced = "coalesced";

    public static readonly IReadOnlyList<string> All = [Pending, Succeeded, Failed, Cancelled, Coalesced];
}

/// One export profile × one order event. Written in the same transaction as its event (an
/// outbox), then claimed by a worker under a lease, sent, and either finished or given a new
/// due time. A lease that expires without an answer (a crashed worker) makes the delivery due
/// again: delivery is at least once, and the stable id lets receivers drop repeats.
public sealed class Delivery : Infrastructure.ILeasedRow
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    public long ProfileId { get; set; }
    public long EventKey { get; set; }
    public Orders.OrderEvent? Event { get; set; }
    public long OrderKey { get; set; }
    public Orders.StoredOrder? Order { get; set; }
    public long OrderId { get; set; }
    public string? CustomerId { get; set; }
    public required string CustomerType { get; set; }
    public string Status { get; set; } = DeliveryStatus.Pending;
    // scheme://host:port of the postback URL when scheduled: what endpoint health is kept for.
    public required string Endpoint { get; set; }
    public DateTimeOffset DueAt { get; set; }
    public DateTimeOffset FirstDueAt { get; set; }
    public int Attempts { get; set; }
    public string? LeaseOwner { get; set; }
    public DateTimeOffset? LeaseUntil { get; set; }
    public DateTimeOffset? LastAttemptAt { get; set; }
    public int? LastStatusCode { get; set; }
    public string? LastError { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? CompletedAt { get; set; }
    // The W3C trace context of the ingest that scheduled it (null unless tracing is on): each
    // attempt's span is its child, so one trace shows a postback and every attempt it caused.
    public string? TraceParent { get; set; }
    // Scheduled by a profile with ordering perOrder: not claimed while an earlier delivery of
    // the same order and profile is pending (docs/ordering.md).
    public bool Ordered { get; set; }
    // Ordered deliveries: the earlier delivery of the same order and profile this one waited
    // for (the last one still pending after this one was due), set when it is first claimed.
    public long? AfterId { get; set; }
    // Coalescing profiles: the delivery this one's event went out with (status coalesced).
    public long? CoalescedIntoId { get; set; }
}

/// What one attempt sent and got back. Secrets in the request are masked before it is stored.
public sealed class DeliveryAttempt : Outbound.RecordedExchange
{
    public long Id { get; set; }
    public long DeliveryId { get; set; }
    public long OrganizationId { get; set; }
    public int Number { get; set; }
    // What the profile's captures took from the answer, or why they took nothing.
    public string? Captures { get; set; }
}

/// The customer's log (seed 001, "Viewing Fired Webhooks"): one entry per fired export,
/// linking to the delivery and so to exactly what was sent.
public sealed class HistoryEntry
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    public string? CustomerId { get; set; }
    public long OrderId { get; set; }
    public required string Kind { get; set; }
    public long? DeliveryId { get; set; }
    public long? ProfileId { get; set; }
    public string? CustomerType { get; set; }
    public required string Message { get; set; }
    // The outcome, for entries written when it is final (order confirmations); an export's
    // status is its delivery's.
    public string? Status { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    // Set when retention deleted what the line links to (the delivery and its attempts, or the
    // order): the line stays, says so, and keeps the final status in Status.
    public DateTimeOffset? DetailsExpiredAt { get; set; }
}

internal sealed class DeliveryConfiguration : IEntityTypeConfiguration<Delivery>
{
    public void Configure(EntityTypeBuilder<Delivery> e)
    {
        e.ToTable("deliveries");
        e.Property(x => x.CustomerId).HasMaxLength(64);
        e.Property(x => x.CustomerType).HasMaxLength(32);
        e.Property(x => x.Status).HasMaxLength(16);
        e.Property(x => x.Endpoint).HasMaxLength(300);
        e.Property(x => x.LeaseOwner).HasMaxLength(64);
        e.Property(x => x.LastError).HasMaxLength(1000);
        e.Property(x => x.TraceParent).HasMaxLength(64);
        // The claim query: pending and due, oldest first. Partial, so the finished
        // deliveries (nearly all of them, over time) are not in it.
        e.HasIndex(x => x.DueAt).HasFilter("\"Status\" = 'pending'").HasDatabaseName("IX_deliveries_pending_DueAt");
        e.HasIndex(x => new { x.OrganizationId, x.ProfileId, x.Id });
        e.HasIndex(x => new { x.OrganizationId, x.OrderId });
        e.HasIndex(x => x.EventKey);
        // Ordering: "is an earlier delivery of this order and profile still pending?" and
        // "which one did it wait for?" are lookups on this index.
        e.HasIndex(x => new { x.OrderKey, x.ProfileId, x.Id }).HasDatabaseName("IX_deliveries_order_profile");
        // Retention finds finished deliveries by age; partial, so the pending ones (the hot
        // part of the table) are not in it.
        e.HasIndex(x => x.CompletedAt).HasFilter("\"CompletedAt\" IS NOT NULL").HasDatabaseName("IX_deliveries_finished_CompletedAt");
        e.HasOne(x => x.Event).WithMany().HasForeignKey(x => x.EventKey).OnDelete(DeleteBehavior.Cascade);
        e.HasOne(x => x.Order).WithMany().HasForeignKey(x => x.OrderKey).OnDelete(DeleteBehavior.NoAction);
    }
}

internal sealed class DeliveryAttemptConfiguration : IEntityTypeConfiguration<DeliveryAttempt>
{
    public void Configure(EntityTypeBuilder<DeliveryAttempt> e)
    {
        e.ToTable("delivery_attempts");
        e.Property(x => x.RequestMethod).HasMaxLength(16);
        e.Property(x => x.Error).HasMaxLength(1000);
        e.HasIndex(x => new { x.DeliveryId, x.Number });
        e.HasOne<Delivery>().WithMany().HasForeignKey(x => x.DeliveryId).OnDelete(DeleteBehavior.Cascade);
    }
}

internal sealed class HistoryEntryConfiguration : IEntityTypeConfiguration<HistoryEntry>
{
    public void Configure(EntityTypeBuilder<HistoryEntry> e)
    {
        e.ToTable("customer_history");
        e.Property(x => x.CustomerId).HasMaxLength(64);
        e.Property(x => x.Kind).HasMaxLength(32);
        e.Property(x => x.CustomerType).HasMaxLength(32);
        e.Property(x => x.Message).HasMaxLength(1000);
        e.Property(x => x.Status).HasMaxLength(16);
        e.HasIndex(x => new { x.OrganizationId, x.CustomerId, x.Id });
        e.HasIndex(x => new { x.OrganizationId, x.OrderId });
        // Retention marks the lines of the deliveries it deletes.
        e.HasIndex(x => x.DeliveryId).HasFilter("\"DeliveryId\" IS NOT NULL");
    }
}

// This feature's tables on the shared context, as extension properties (`db.Deliveries`): PostbackDb
// names no feature, so Storage stays below the features (docs/architecture.md).
public static class DeliveryTables
{
    extension(PostbackDb db)
    {
        public DbSet<Delivery> Deliveries => db.Set<Delivery>();
        public DbSet<DeliveryAttempt> DeliveryAttempts => db.Set<DeliveryAttempt>();
        public DbSet<HistoryEntry> History => db.Set<HistoryEntry>();
    }
}
