using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.Team;

/// An operator account. E-mail addresses are unique across the hub (a login names no
/// organization); the password is stored as Identity's PasswordHasher hash.
public sealed class User
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    public required string Email { get; set; }
    // Lower-cased invariant: what logins and the unique index compare.
    public required string NormalizedEmail { get; set; }
    public required string PasswordHash { get; set; }
    public required string Role { get; set; }
    // Set by an invite or a reset: the temporary password must be replaced at the next login.
    public bool MustChangePassword { get; set; }
    // Bumped by a role change, a password reset or disabling: sessions made before it end.
    public int SessionVersion { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? LastLoginAt { get; set; }
    public DateTimeOffset? DisabledAt { get; set; }
}

/// One change, who made it and when. Written in the same SaveChanges as the change itself
/// (AuditInterceptor), so there is no change without its entry and no entry without its change.
public sealed class AuditEntry
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    public DateTimeOffset At { get; set; }
    // A user's e-mail or "key:<name>".
    public required string Actor { get; set; }
    // create, update, delete, or the endpoint's verb (retry, replay, confirm, link, ...).
    public required string Action { get; set; }
    public required string ResourceType { get; set; }
    public string? ResourceId { get; set; }
    // JSON object { field: { "from": ..., "to": ... } } with secrets masked.
    public string? Changes { get; set; }
}

internal sealed class UserConfiguration : IEntityTypeConfiguration<User>
{
    public void Configure(EntityTypeBuilder<User> e)
    {
        e.ToTable("users");
        e.Property(x => x.Email).HasMaxLength(254);
        e.Property(x => x.NormalizedEmail).HasMaxLength(254);
        e.Property(x => x.PasswordHash).HasMaxLength(200);
        e.Property(x => x.Role).HasMaxLength(16);
        e.HasIndex(x => x.NormalizedEmail).IsUnique();
        e.HasIndex(x => x.OrganizationId);
        e.HasOne<Organization>().WithMany().HasForeignKey(x => x.OrganizationId).OnDelete(DeleteBehavior.Cascade);
    }
}

internal sealed class AuditEntryConfiguration : IEntityTypeConfiguration<AuditEntry>
{
    public void Configure(EntityTypeBuilder<AuditEntry> e)
    {
        e.ToTable("audit_log");
        e.Property(x => x.Actor).HasMaxLength(254);
        e.Property(x => x.Action).HasMaxLength(32);
        e.Property(x => x.ResourceType).HasMaxLength(64);
        e.Property(x => x.ResourceId).HasMaxLength(128);
        e.HasIndex(x => new { x.OrganizationId, x.Id });
        e.HasOne<Organization>().WithMany().HasForeignKey(x => x.OrganizationId).OnDelete(DeleteBehavior.Cascade);
    }
}

// This feature's tables on the shared context, as extension properties (`db.Users`): PostbackDb
// names no feature, so Storage stays below the features (docs/architecture.md).
public static class TeamTables
{
    extension(PostbackDb db)
    {
        public DbSet<User> Users => db.Set<User>();
        public DbSet<AuditEntry> Audit => db.Set<AuditEntry>();
    }
}
