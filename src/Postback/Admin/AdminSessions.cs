using System.Security.Cryptography;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.Admin;

/// A server-side record of every admin login. The cookie carries the session's id; a cookie
/// whose session is gone is refused, so logging out (or an operator revoking sessions) ends it
/// for good, even for someone who copied the cookie before. Sessions made with the operator
/// password have no API key whose revocation could end them: this is how they end.
public sealed class AdminSession
{
    // 128 random bits, hex.
    public required string Id { get; set; }
    public long OrganizationId { get; set; }
    // password or api-key.
    public required string Method { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
}

public static class AdminSessions
{
    public const string IdClaim = "postback:sid";

    public static async Task<string> StartAsync(PostbackDb db, long organizationId, string method, DateTimeOffset now, TimeSpan length, CancellationToken ct)
    {
        // Expired sessions go when a new one starts: the table stays as small as the logins.
        await db.WriteInTurnAsync(() => db.AdminSessions.Where(s => s.ExpiresAt < now).ExecuteDeleteAsync(ct), ct);
        var session = new AdminSession
        {
            Id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)),
            OrganizationId = organizationId,
            Method = method,
            CreatedAt = now,
            ExpiresAt = now + length,
        };
        db.AdminSessions.Add(session);
        await db.SaveChangesInTurnAsync(ct);
        return session.Id;
    }

    public static Task<bool> IsLiveAsync(PostbackDb db, string id, DateTimeOffset now, CancellationToken ct) =>
        db.AdminSessions.AsNoTracking().AnyAsync(s => s.Id == id && s.ExpiresAt > now, ct);

    /// Sliding expiry, as the cookie's: each use moves the end, at most once a minute.
    public static Task ExtendAsync(PostbackDb db, string id, DateTimeOffset now, TimeSpan length, CancellationToken ct) =>
        db.WriteInTurnAsync(() => db.AdminSessions.Where(s => s.Id == id && s.ExpiresAt < now + length - TimeSpan.FromMinutes(1))
            .ExecuteUpdateAsync(u => u.SetProperty(s => s.ExpiresAt, now + length), ct), ct);

    public static Task<int> EndAsync(PostbackDb db, string id, CancellationToken ct) =>
        db.WriteInTurnAsync(() => db.AdminSessions.Where(s => s.Id == id).ExecuteDeleteAsync(ct), ct);

    /// Every session of the organization but the one given: "log out everywhere else".
    public static Task<int> EndOthersAsync(PostbackDb db, long organizationId, string? keep, CancellationToken ct) =>
        db.WriteInTurnAsync(() => db.AdminSessions.Where(s => s.OrganizationId == organizationId && s.Id != keep).ExecuteDeleteAsync(ct), ct);
}

internal sealed class AdminSessionConfiguration : IEntityTypeConfiguration<AdminSession>
{
    public void Configure(EntityTypeBuilder<AdminSession> e)
    {
        e.ToTable("admin_sessions");
        e.Property(x => x.Id).HasMaxLength(32);
        e.Property(x => x.Method).HasMaxLength(16);
        e.HasIndex(x => x.OrganizationId);
        e.HasOne<Organization>().WithMany().HasForeignKey(x => x.OrganizationId).OnDelete(DeleteBehavior.Cascade);
    }
}

// This feature's tables on the shared context, as extension properties (`db.AdminSessions`): PostbackDb
// names no feature, so Storage stays below the features (docs/architecture.md).
public static class AdminTables
{
    extension(PostbackDb db)
    {
        public DbSet<AdminSession> AdminSessions => db.Set<AdminSession>();
    }
}
