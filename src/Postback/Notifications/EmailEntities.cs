using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.Notifications;

public static class EmailStatus
{
    public const string Pending = "pending";
    public const string Sent = "sent";
    // The SMTP server refused the recipient for good (5xx): retrying cannot help.
    public const string Rejected = "rejected";
}

/// The e-mail outbox: one row per message and recipient, written in the same transaction as
/// whatever it reports, so an alert exists exactly when its cause was recorded. DedupKey is
/// unique: the same failure cannot queue the same recipient twice. A background sender claims
/// due rows under a lease and marks each one sent as soon as the SMTP server has taken it.
public sealed class OutboxEmail : Infrastructure.ILeasedRow
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    public required string DedupKey { get; set; }
    public required string Recipient { get; set; }
    public required string Subject { get; set; }
    public required string Body { get; set; }
    public string Status { get; set; } = EmailStatus.Pending;
    public int Attempts { get; set; }
    public DateTimeOffset DueAt { get; set; }
    public string? LeaseOwner { get; set; }
    public DateTimeOffset? LeaseUntil { get; set; }
    public string? LastError { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? SentAt { get; set; }
}

internal sealed class OutboxEmailConfiguration : IEntityTypeConfiguration<OutboxEmail>
{
    public void Configure(EntityTypeBuilder<OutboxEmail> e)
    {
        e.ToTable("email_outbox");
        e.Property(x => x.DedupKey).HasMaxLength(200);
        e.Property(x => x.Recipient).HasMaxLength(254);
        e.Property(x => x.Subject).HasMaxLength(300);
        e.Property(x => x.Status).HasMaxLength(16);
        e.Property(x => x.LeaseOwner).HasMaxLength(64).IsConcurrencyToken();
        e.Property(x => x.LastError).HasMaxLength(1000);
        e.HasIndex(x => x.DedupKey).IsUnique();
        e.HasIndex(x => x.DueAt).HasFilter("\"Status\" = 'pending'").HasDatabaseName("IX_email_outbox_pending_DueAt");
        e.HasOne<Organization>().WithMany().HasForeignKey(x => x.OrganizationId).OnDelete(DeleteBehavior.Cascade);
    }
}

// This feature's tables on the shared context, as extension properties (`db.EmailOutbox`): PostbackDb
// names no feature, so Storage stays below the features (docs/architecture.md).
public static class EmailTables
{
    extension(PostbackDb db)
    {
        public DbSet<OutboxEmail> EmailOutbox => db.Set<OutboxEmail>();
    }
}
