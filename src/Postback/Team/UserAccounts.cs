using System.Security.Cryptography;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Postback.Infrastructure;
using Postback.Storage;

namespace Postback.Team;

public sealed record UserInput(string? Email, string? Role, string? Password);

public sealed record UserChange(string? Role, bool? Disabled);

public sealed record UserView(long Id, string Email, string Role, bool Disabled, bool MustChangePassword, DateTimeOffset CreatedAt, DateTimeOffset? LastLoginAt)
{
    public static UserView From(User u) => new(u.Id, u.Email, u.Role, u.DisabledAt is not null, u.MustChangePassword, u.CreatedAt, u.LastLoginAt);
}

// The temporary password appears in this one answer, like a new API key.
public sealed record InvitedUserView(UserView User, string? TemporaryPassword);

/// Operator accounts: creating (an invite with a temporary password the user must replace),
/// checking a password, changing a role, resetting a password, disabling. Passwords are
/// hashed with ASP.NET Core Identity's PasswordHasher (PBKDF2, salted, versioned).
public sealed class UserAccounts(PostbackDb db, TimeProvider time)
{
    public const int MinPasswordLength = 12;
    public const int MaxPasswordLength = 256;

    private static readonly PasswordHasher<User> Hasher = new();
    // Checked when no account matches, so a wrong e-mail costs as long as a wrong password.
    private static readonly string DummyHash = Hasher.HashPassword(new User { Email = "", NormalizedEmail = "", PasswordHash = "", Role = "" }, "not a password of anyone");

    public static string Normalize(string email) => email.Trim().ToLowerInvariant();

    public static string? PasswordProblem(string? password) => password switch
    {
        null or "" => "is required",
        { Length: < MinPasswordLength } => $"must be at least {MinPasswordLength} characters",
        { Length: > MaxPasswordLength } => $"must be at most {MaxPasswordLength} characters",
        _ => null,
    };

    public static string? EmailProblem(string? email)
    {
        var e = email?.Trim();
        if (string.IsNullOrEmpty(e))
        {
            return "is required";
        }
        var at = e.IndexOf('@', StringComparison.Ordinal);
        if (e.Length > 254 || at <= 0 || at != e.LastIndexOf('@') || at == e.Length - 1 || e.Any(char.IsWhiteSpace))
        {
            return $"'{e}' is not an e-mail address";
        }
        return null;
    }

    // 18 random bytes: 24 characters a person can read out, and no guessing it.
    public static string TemporaryPassword() =>
        Convert.ToBase64String(RandomNumberGenerator.GetBytes(18)).Replace('+', 'x').Replace('/', 'y');

    public Task<List<User>> ListAsync(long organizationId, CancellationToken ct) =>
        db.Users.AsNoTracking().Where(u => u.OrganizationId == organizationId).OrderBy(u => u.NormalizedEmail).ToListAsync(ct);

    public async Task<(InvitedUserView? Created, ValidationErrors Errors, bool Conflict)> CreateAsync(long organizationId, UserInput input, CancellationToken ct)
    {
        var errors = new ValidationErrors();
        if (EmailProblem(input.Email) is { } emailProblem)
        {
            errors.Add("email", emailProblem);
        }
        if (!Roles.IsValid(input.Role))
        {
            errors.Add("role", input.Role is null ? "is required: admin, operator or viewer" : $"'{input.Role}' is not a role: admin, operator or viewer");
        }
        if (input.Password is not null && PasswordProblem(input.Password) is { } passwordProblem)
        {
            errors.Add("password", passwordProblem);
        }
        if (errors.Any)
        {
            return (null, errors, false);
        }
        var normalized = Normalize(input.Email!);
        if (await db.Users.AnyAsync(u => u.NormalizedEmail == normalized, ct))
        {
            errors.Add("email", $"'{input.Email!.Trim()}' already has an account");
            return (null, errors, true);
        }
        // Without a chosen password the account gets a temporary one, replaced at first login.
        var temporary = input.Password is null ? TemporaryPassword() : null;
        var user = new User
        {
            OrganizationId = organizationId,
            Email = input.Email!.Trim(),
            NormalizedEmail = normalized,
            PasswordHash = "",
            Role = input.Role!,
            MustChangePassword = temporary is not null,
            CreatedAt = time.GetUtcNow(),
        };
        user.PasswordHash = Hasher.HashPassword(user, input.Password ?? temporary!);
        db.Users.Add(user);
        await db.SaveChangesInTurnAsync(ct);
        return (new InvitedUserView(UserView.From(user), temporary), errors, false);
    }

    /// The account when the e-mail and password match an enabled one; null otherwise.
    public async Task<User?> VerifyAsync(string? email, string? password, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(email) || string.IsNullOrEmpty(password) || password.Length > MaxPasswordLength)
        {
            return null;
        }
        var normalized = Normalize(email);
        var user = await db.Users.FirstOrDefaultAsync(u => u.NormalizedEmail == normalized, ct);
        var result = Hasher.VerifyHashedPassword(user ?? new User { Email = "", NormalizedEmail = "", PasswordHash = "", Role = "" }, user?.PasswordHash ?? DummyHash, password);
        if (user is null || user.DisabledAt is not null || result == PasswordVerificationResult.Failed)
        {
            return null;
        }
        if (result == PasswordVerificationResult.SuccessRehashNeeded)
        {
            user.PasswordHash = Hasher.HashPassword(user, password);
        }
        user.LastLoginAt = time.GetUtcNow();
        await db.SaveChangesInTurnAsync(ct);
        return user;
    }

    public async Task<(User? Changed, ValidationErrors Errors, bool Conflict)> ChangeAsync(long organizationId, long id, UserChange change, CancellationToken ct)
    {
        var errors = new ValidationErrors();
        if (change.Role is not null && !Roles.IsValid(change.Role))
        {
            errors.Add("role", $"'{change.Role}' is not a role: admin, operator or viewer");
            return (null, errors, false);
        }
        var user = await db.Users.FirstOrDefaultAsync(u => u.Id == id && u.OrganizationId == organizationId, ct);
        if (user is null)
        {
            return (null, errors, false);
        }
        var demoted = user.Role == Roles.Admin && user.DisabledAt is null
            && ((change.Role is not null && change.Role != Roles.Admin) || change.Disabled == true);
        if (demoted && !await db.Users.AnyAsync(u => u.OrganizationId == organizationId && u.Id != id && u.Role == Roles.Admin && u.DisabledAt == null, ct))
        {
            errors.Add(change.Disabled == true ? "disabled" : "role", "this is the organization's last enabled admin account; make another admin first");
            return (null, errors, true);
        }
        var ends = false;
        if (change.Role is not null && change.Role != user.Role)
        {
            user.Role = change.Role;
            ends = true;
        }
        if (change.Disabled is { } disabled && disabled != (user.DisabledAt is not null))
        {
            user.DisabledAt = disabled ? time.GetUtcNow() : null;
            ends = true;
        }
        if (ends)
        {
            // The user's sessions carry the old role or predate the disabling: they end.
            user.SessionVersion++;
        }
        await db.SaveChangesInTurnAsync(ct);
        return (user, errors, false);
    }

    /// A new temporary password (null when there is no such user); the user's sessions end.
    public async Task<string?> ResetPasswordAsync(long organizationId, long id, CancellationToken ct)
    {
        var user = await db.Users.FirstOrDefaultAsync(u => u.Id == id && u.OrganizationId == organizationId, ct);
        if (user is null)
        {
            return null;
        }
        var temporary = TemporaryPassword();
        user.PasswordHash = Hasher.HashPassword(user, temporary);
        user.MustChangePassword = true;
        user.SessionVersion++;
        await db.SaveChangesInTurnAsync(ct);
        return temporary;
    }

    /// The user's own change; false when the current password is wrong.
    public async Task<(bool Changed, ValidationErrors Errors)> ChangeOwnPasswordAsync(long userId, string? current, string? next, CancellationToken ct)
    {
        var errors = new ValidationErrors();
        var user = await db.Users.FirstOrDefaultAsync(u => u.Id == userId, ct);
        if (user is null || string.IsNullOrEmpty(current) || Hasher.VerifyHashedPassword(user, user.PasswordHash, current) == PasswordVerificationResult.Failed)
        {
            errors.Add("currentPassword", "is not your current password");
            return (false, errors);
        }
        if (PasswordProblem(next) is { } problem)
        {
            errors.Add("newPassword", problem);
            return (false, errors);
        }
        if (next == current)
        {
            errors.Add("newPassword", "must differ from the current password");
            return (false, errors);
        }
        user.PasswordHash = Hasher.HashPassword(user, next!);
        user.MustChangePassword = false;
        user.SessionVersion++;
        await db.SaveChangesInTurnAsync(ct);
        return (true, errors);
    }

    /// `Postback:BootstrapAdmin`: the first admin account, made once (an existing account
    /// with that e-mail is left as it is, password included).
    public async Task EnsureBootstrapAdminAsync(long organizationId, string? email, string? password, ILogger log, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(email) && string.IsNullOrEmpty(password))
        {
            return;
        }
        if (EmailProblem(email) is { } emailProblem)
        {
            throw new InvalidOperationException($"Postback:BootstrapAdmin:Email {emailProblem}.");
        }
        if (PasswordProblem(password) is { } passwordProblem)
        {
            throw new InvalidOperationException($"Postback:BootstrapAdmin:Password {passwordProblem}.");
        }
        var normalized = Normalize(email!);
        if (await db.Users.AnyAsync(u => u.NormalizedEmail == normalized, ct))
        {
            return;
        }
        var (created, _, _) = await CreateAsync(organizationId, new UserInput(email, Roles.Admin, password), ct);
        log.LogInformation("Created the first admin account {Email} (user {UserId})", created!.User.Email, created.User.Id);
    }
}
