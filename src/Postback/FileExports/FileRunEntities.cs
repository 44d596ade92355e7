using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Postback.ExportProfiles;
using Postback.Infrastructure;
using Postback.Storage;

namespace Postback.FileExports;

public static class FileRunStatus
{
    public const string Pending = "pending";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
}

/// One day × one route of a file profile: the durable job that renders and uploads its file,
/// and the record of it. (ProfileId, RouteIndex, Day) is unique, so a day is run into one row
/// however many processes schedule it; re-running the day reuses the row (Round + 1) and
/// overwrites the same file. A worker claims a due pending run under a lease (LeaseOwner,
/// LeaseUntil), renews it while uploading, and writes the outcome only while the lease is
/// still its own.
public sealed class FileRun : ILeasedRow
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    public long ProfileId { get; set; }
    public int RouteIndex { get; set; }
    public required string RouteName { get; set; }
    // The day in the profile's time zone, yyyy-MM-dd (sorts as text on both databases).
    public required string Day { get; set; }
    public string Status { get; set; } = FileRunStatus.Pending;
    // "schedule" or "manual".
    public required string Trigger { get; set; }
    // Scheduled run + manual re-runs: an alert names (Id, Round), so each round alerts once.
    public int Round { get; set; } = 1;
    public int Attempts { get; set; }
    public int? Rows { get; set; }
    public long? Bytes { get; set; }
    public string? FileName { get; set; }
    // The CSV exactly as uploaded, for download, until the retention pass clears it.
    public byte[]? Content { get; set; }
    public string? LastError { get; set; }
    public DateTimeOffset DueAt { get; set; }
    // When this round was first due: giveUpAfterHours counts from here.
    public DateTimeOffset FirstDueAt { get; set; }
    public string? LeaseOwner { get; set; }
    public DateTimeOffset? LeaseUntil { get; set; }
    public DateTimeOffset? LastAttemptAt { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
    public DateTimeOffset? CompletedAt { get; set; }
}

internal sealed class FileRunConfiguration : IEntityTypeConfiguration<FileRun>
{
    public void Configure(EntityTypeBuilder<FileRun> e)
    {
        e.ToTable("file_runs");
        e.Property(x => x.RouteName).HasMaxLength(64);
        e.Property(x => x.Day).HasMaxLength(10);
        e.Property(x => x.Status).HasMaxLength(16);
        e.Property(x => x.Trigger).HasMaxLength(16);
        e.Property(x => x.FileName).HasMaxLength(300);
        e.Property(x => x.LastError).HasMaxLength(1000);
        e.Property(x => x.LeaseOwner).HasMaxLength(64);
        e.HasIndex(x => new { x.ProfileId, x.RouteIndex, x.Day }).IsUnique();
        e.HasIndex(x => new { x.OrganizationId, x.ProfileId, x.Id });
        e.HasIndex(x => x.DueAt).HasFilter("\"Status\" = 'pending'").HasDatabaseName("IX_file_runs_pending_DueAt");
        // A deleted profile takes its runs (and their files) with it.
        e.HasOne<ExportProfile>().WithMany().HasForeignKey(x => x.ProfileId).OnDelete(DeleteBehavior.Cascade);
    }
}

// This feature's tables on the shared context, as extension properties (`db.FileRuns`): PostbackDb
// names no feature, so Storage stays below the features (docs/architecture.md).
public static class FileRunTables
{
    extension(PostbackDb db)
    {
        public DbSet<FileRun> FileRuns => db.Set<FileRun>();
    }
}
