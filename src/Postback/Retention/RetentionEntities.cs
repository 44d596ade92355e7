using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Postback.Storage;

namespace Postback.Retention;

/// A named lease on a background job that only one process may run at a time (hubs sharing
/// a PostgreSQL database). A row per job, seeded by the migration; a process takes it with one
/// conditional update when it is free or expired, and keeps it by renewing it as it works. A
/// process that dies leaves the lease to expire.
public sealed class JobLease
{
    public required string Name { get; set; }
    public string? Owner { get; set; }
    public DateTimeOffset? Until { get; set; }
}

internal static class RetentionModel
{
    public const string SweepLease = "retention-sweep";
}

internal sealed class JobLeaseConfiguration : IEntityTypeConfiguration<JobLease>
{
    public void Configure(EntityTypeBuilder<JobLease> e)
    {
        e.ToTable("job_leases");
        e.HasKey(x => x.Name);
        e.Property(x => x.Name).HasMaxLength(64);
        e.Property(x => x.Owner).HasMaxLength(64);
        e.HasData(new JobLease { Name = RetentionModel.SweepLease });
    }
}

// This feature's tables on the shared context, as extension properties (`db.JobLeases`): PostbackDb
// names no feature, so Storage stays below the features (docs/architecture.md).
public static class RetentionTables
{
    extension(PostbackDb db)
    {
        public DbSet<JobLease> JobLeases => db.Set<JobLease>();
    }
}
