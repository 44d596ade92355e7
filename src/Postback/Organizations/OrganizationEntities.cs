using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Postback.Storage;

namespace Postback.Organizations;

// Every tenant-owned row carries OrganizationId, and every query filters on it: one
// organization never sees another's data.

public sealed class Organization
{
    public long Id { get; set; }
    public required string Name { get; set; }
    // The numeric id the order confirmation webhook sends as companyId.
    public long CompanyId { get; set; }
    // An IANA zone (e.g. "Europe/Prague"): the admin UI shows times in it.
    public string TimeZone { get; set; } = "UTC";
    public DateTimeOffset CreatedAt { get; set; }
}

public sealed class ApiKey
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    public required string Name { get; set; }
    // SHA-256 of the key, hex. Keys are 256-bit random (or operator-chosen bootstrap keys), so a
    // fast hash is enough; the key itself is never stored.
    public required string KeyHash { get; set; }
    // The first characters, so an operator can tell keys apart.
    public required string Prefix { get; set; }
    // admin, operator or viewer (Team.Roles).
    public required string Role { get; set; }
    // The user who made it ("key:<name>" for a key made with a key; null for the bootstrap key):
    // a key acts for its maker, so one made by a server admin may create organizations.
    public string? CreatedBy { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? LastUsedAt { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }
}

internal sealed class OrganizationConfiguration : IEntityTypeConfiguration<Organization>
{
    public void Configure(EntityTypeBuilder<Organization> e)
    {
        e.ToTable("organizations");
        e.Property(x => x.Name).HasMaxLength(200);
        e.Property(x => x.TimeZone).HasMaxLength(64);
        e.HasIndex(x => x.CompanyId).IsUnique();
    }
}

internal sealed class ApiKeyConfiguration : IEntityTypeConfiguration<ApiKey>
{
    public void Configure(EntityTypeBuilder<ApiKey> e)
    {
        e.ToTable("api_keys");
        e.Property(x => x.Name).HasMaxLength(200);
        e.Property(x => x.KeyHash).HasMaxLength(64);
        e.Property(x => x.Prefix).HasMaxLength(16);
        e.Property(x => x.Role).HasMaxLength(16);
        e.Property(x => x.CreatedBy).HasMaxLength(254);
        e.HasIndex(x => x.KeyHash).IsUnique();
        e.HasOne<Organization>().WithMany().HasForeignKey(x => x.OrganizationId).OnDelete(DeleteBehavior.Cascade);
    }
}

// This feature's tables on the shared context, as extension properties (`db.Organizations`): PostbackDb
// names no feature, so Storage stays below the features (docs/architecture.md).
public static class OrganizationTables
{
    extension(PostbackDb db)
    {
        public DbSet<Organization> Organizations => db.Set<Organization>();
        public DbSet<ApiKey> ApiKeys => db.Set<ApiKey>();
    }
}
