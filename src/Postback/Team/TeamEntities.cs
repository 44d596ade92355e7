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
