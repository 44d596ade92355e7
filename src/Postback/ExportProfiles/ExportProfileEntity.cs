using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.ExportProfiles;

public sealed class ExportProfile
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    public required string Name { get; set; }
    public string Type { get; set; } = "postback";
    public required string PostbackUrl { get; set; }
    public int ExportDelayMinutes { get; set; }
    public bool Enabled { get; set; } = true;
    // Retries never stop by default (the CRMs' promise); the backoff grows to this cap.
    public int RetryCapMinutes { get; set; } = 60;
    // When set, a delivery still failing this long after it was first due is marked failed.
    public int? GiveUpAfterHours { get; set; }
    // Standard Webhooks signing secret (whsec_…): when set, every request is signed.
    public string? SigningSecret { get; set; }
    // "none" or "perOrder": whether one order's deliveries of this profile go out one at a
    // time, in the order of their events (see docs/ordering.md).
    public string Ordering { get; set; } = ProfileOrdering.None;
    // Several events of one order within the export delay go out as one delivery.
    public bool Coalesce { get; set; }
    // Values taken from the receiver's JSON answer onto the order.
    public List<ProfileCapture> Captures { get; set; } = [];
    // Mappings and routes are always read and written with their profile, so they live in it
    // as JSON rather than in tables of their own.
    public List<ExportMapping> Mappings { get; set; } = [];
    public List<ExportRoute> Routes { get; set; } = [];
    // Type "file": destination, file name, schedule and CSV format (secrets included, which the
    // API never shows).
    public FileExports.FileSettings? File { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

internal sealed class ExportProfileConfiguration : IEntityTypeConfiguration<ExportProfile>
{
    public void Configure(EntityTypeBuilder<ExportProfile> e)
    {
        e.ToTable("export_profiles");
        e.Property(x => x.Name).HasMaxLength(200);
        e.Property(x => x.Type).HasMaxLength(32);
        e.Property(x => x.PostbackUrl).HasMaxLength(2048);
        e.Property(x => x.SigningSecret).HasMaxLength(100);
        e.Property(x => x.Ordering).HasMaxLength(16);
        e.Property(x => x.Captures).HasConversion(JsonColumn.Converter<List<ProfileCapture>>(), JsonColumn.Comparer<List<ProfileCapture>>());
        e.Property(x => x.Mappings).HasConversion(JsonColumn.Converter<List<ExportMapping>>(), JsonColumn.Comparer<List<ExportMapping>>());
        e.Property(x => x.Routes).HasConversion(JsonColumn.Converter<List<ExportRoute>>(), JsonColumn.Comparer<List<ExportRoute>>());
        e.Property(x => x.File).HasConversion(JsonColumn.NullableConverter<FileExports.FileSettings>(), JsonColumn.Comparer<FileExports.FileSettings?>());
        e.HasIndex(x => x.OrganizationId);
        e.HasOne<Organization>().WithMany().HasForeignKey(x => x.OrganizationId).OnDelete(DeleteBehavior.Cascade);
    }
}

// This feature's tables on the shared context, as extension properties (`db.ExportProfiles`): PostbackDb
// names no feature, so Storage stays below the features (docs/architecture.md).
public static class ExportProfileTables
{
    extension(PostbackDb db)
    {
        public DbSet<ExportProfile> ExportProfiles => db.Set<ExportProfile>();
    }
}
