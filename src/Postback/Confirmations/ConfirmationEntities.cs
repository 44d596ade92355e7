using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Postback.Orders;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.Confirmations;

public static class ConfirmationStatus
{
    public const string Pending = "pending";
    public const string Confirmed = "confirmed";
    public const string Failed = "failed";
}

/// An organization's order confirmation webhook (seed 002, "Step two"). One row per
/// organization, created by the first PUT.
public sealed class ConfirmationSettings
{
    public long OrganizationId { get; set; }
    public bool Enabled { get; set; }
    public string? Url { get; set; }
    public string? AuthenticationToken { get; set; }
    public List<string> NotificationEmails { get; set; } = [];
    public DateTimeOffset UpdatedAt { get; set; }
}

/// The confirmation state of one order, and the durable job that sends it. Confirm and
/// reconfirm make it pending and due; the worker claims it under a lease (LeaseOwner is the
/// concurrency token, so an outcome from a worker that lost its lease is never written) and
/// either finishes it or makes it due again. Round counts confirm + reconfirms: a failure is
/// identified by (Id, Round), which is what keeps its alert e-mails from being sent twice.
public sealed class OrderConfirmation : Infrastructure.ILeasedRow
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    public long OrderKey { get; set; }
    public long OrderId { get; set; }
    public string? CustomerId { get; set; }
    public string Status { get; set; } = ConfirmationStatus.Pending;
    public int Round { get; set; } = 1;
    // Attempts in this round.
    public int Attempts { get; set; }
    public DateTimeOffset DueAt { get; set; }
    public string? LeaseOwner { get; set; }
    public DateTimeOffset? LeaseUntil { get; set; }
    // The receiver's own words ("message" in its answer), shown on the order.
    public string? Message { get; set; }
    // Why the confirmation failed (or why the last attempt failed, while retries remain).
    public string? Error { get; set; }
    public int? LastStatusCode { get; set; }
    public DateTimeOffset? LastAttemptAt { get; set; }
    public DateTimeOffset RequestedAt { get; set; }
    public DateTimeOffset? CompletedAt { get; set; }
}

/// What one confirmation attempt sent and got back; the authenticationToken is masked.
public sealed class ConfirmationAttempt : Outbound.RecordedExchange
{
    public long Id { get; set; }
    public long ConfirmationId { get; set; }
    public long OrganizationId { get; set; }
    public int Round { get; set; }
    public int Number { get; set; }
}

internal sealed class ConfirmationSettingsConfiguration : IEntityTypeConfiguration<ConfirmationSettings>
{
    public void Configure(EntityTypeBuilder<ConfirmationSettings> e)
    {
        e.ToTable("confirmation_settings");
        e.HasKey(x => x.OrganizationId);
        e.Property(x => x.OrganizationId).ValueGeneratedNever();
        e.Property(x => x.Url).HasMaxLength(2048);
        e.Property(x => x.AuthenticationToken).HasMaxLength(50);
        e.Property(x => x.NotificationEmails).HasConversion(JsonColumn.Converter<List<string>>(), JsonColumn.Comparer<List<string>>());
        e.HasOne<Organization>().WithMany().HasForeignKey(x => x.OrganizationId).OnDelete(DeleteBehavior.Cascade);
    }
}

internal sealed class OrderConfirmationConfiguration : IEntityTypeConfiguration<OrderConfirmation>
{
    public void Configure(EntityTypeBuilder<OrderConfirmation> e)
    {
        e.ToTable("order_confirmations");
        e.Property(x => x.CustomerId).HasMaxLength(64);
        e.Property(x => x.Status).HasMaxLength(16);
        e.Property(x => x.LeaseOwner).HasMaxLength(64).IsConcurrencyToken();
        e.Property(x => x.Message).HasMaxLength(1000);
        e.Property(x => x.Error).HasMaxLength(1000);
        e.HasIndex(x => new { x.OrganizationId, x.OrderId }).IsUnique();
        e.HasIndex(x => x.DueAt).HasFilter("\"Status\" = 'pending'").HasDatabaseName("IX_order_confirmations_pending_DueAt");
        e.HasOne<StoredOrder>().WithMany().HasForeignKey(x => x.OrderKey).OnDelete(DeleteBehavior.Cascade);
    }
}

internal sealed class ConfirmationAttemptConfiguration : IEntityTypeConfiguration<ConfirmationAttempt>
{
    public void Configure(EntityTypeBuilder<ConfirmationAttempt> e)
    {
        e.ToTable("confirmation_attempts");
        e.Property(x => x.RequestMethod).HasMaxLength(16);
        e.Property(x => x.Error).HasMaxLength(1000);
        e.HasIndex(x => new { x.ConfirmationId, x.Id });
        e.HasOne<OrderConfirmation>().WithMany().HasForeignKey(x => x.ConfirmationId).OnDelete(DeleteBehavior.Cascade);
    }
}

// This feature's tables on the shared context, as extension properties (`db.ConfirmationSettings`): PostbackDb
// names no feature, so Storage stays below the features (docs/architecture.md).
public static class ConfirmationTables
{
    extension(PostbackDb db)
    {
        public DbSet<ConfirmationSettings> ConfirmationSettings => db.Set<ConfirmationSettings>();
        public DbSet<OrderConfirmation> Confirmations => db.Set<OrderConfirmation>();
        public DbSet<ConfirmationAttempt> ConfirmationAttempts => db.Set<ConfirmationAttempt>();
    }
}
