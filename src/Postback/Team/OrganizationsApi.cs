using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Postback.Infrastructure;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.Team;

public sealed record OrganizationInput(string? Name, long? CompanyId, string? TimeZone);

public sealed record OrganizationView(long Id, string Name, long CompanyId, string TimeZone, DateTimeOffset CreatedAt)
{
    public static OrganizationView From(Organization o) => new(o.Id, o.Name, o.CompanyId, o.TimeZone, o.CreatedAt);
}

public sealed record NewOrganizationInput(string? Name, long? CompanyId, string? TimeZone, string? AdminEmail);

public sealed record CreatedOrganizationView(OrganizationView Organization, InvitedUserView Admin);

/// `Postback:Admin:ServerAdmins`: e-mails of the people who run the hub itself. They (and keys
/// they made) may create organizations with their first admin.
public sealed class ServerAdmins(IConfiguration configuration)
{
    private readonly HashSet<string> _emails = Read(configuration);

    private static HashSet<string> Read(IConfiguration configuration)
    {
        var section = configuration.GetSection("Postback:Admin:ServerAdmins");
        // A list (ServerAdmins:0, :1) or one comma-separated value (handy in an environment variable).
        var values = section.Get<string[]>() ?? [];
        var single = section.Value?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [];
        return values.Concat(single).Where(e => !string.IsNullOrWhiteSpace(e)).Select(UserAccounts.Normalize).ToHashSet(StringComparer.Ordinal);
    }

    public bool Includes(ClaimsPrincipal user) =>
        user.IsAdmin() && user.OnBehalfOf() is { } email && _emails.Contains(UserAccounts.Normalize(email));
}

/// The organization's own settings, and (for server admins) new organizations.
public sealed class OrganizationSettings(PostbackDb db, UserAccounts accounts, TimeProvider time)
{
    public Task<Organization> GetAsync(long organizationId, CancellationToken ct) =>
        db.Organizations.AsNoTracking().FirstAsync(o => o.Id == organizationId, ct);

    /// The time zone's IANA id is what the pages show times in; Windows ids are refused so the
    /// setting means the same on every host.
    public static bool IsIanaZone(string? id) =>
        !string.IsNullOrWhiteSpace(id) && TimeZoneInfo.TryFindSystemTimeZoneById(id, out var zone) && zone.HasIanaId;

    public static ValidationErrors Validate(string? name, long? companyId, string? timeZone)
    {
        var errors = new ValidationErrors();
        if (string.IsNullOrWhiteSpace(name))
        {
            errors.Add("name", "is required");
        }
        else if (name.Trim().Length > 200)
        {
            errors.Add("name", "must be at most 200 characters");
        }
        if (companyId is null)
        {
            errors.Add("companyId", "is required");
        }
        else if (companyId <= 0)
        {
            errors.Add("companyId", "must be a positive number");
        }
        if (timeZone is not null && !IsIanaZone(timeZone))
        {
            errors.Add("timeZone", $"'{timeZone}' is not an IANA time zone (e.g. Europe/Prague, America/New_York, UTC)");
        }
        return errors;
    }

    public async Task<(Organization? Saved, ValidationErrors Errors, bool Conflict)> UpdateAsync(long organizationId, OrganizationInput input, CancellationToken ct)
    {
        var errors = Validate(input.Name, input.CompanyId, input.TimeZone);
        if (errors.Any)
        {
            return (null, errors, false);
        }
        if (await db.Organizations.AnyAsync(o => o.CompanyId == input.CompanyId && o.Id != organizationId, ct))
        {
            errors.Add("companyId", $"{input.CompanyId} is another organization's companyId");
            return (null, errors, true);
        }
        var organization = await db.Organizations.FirstAsync(o => o.Id == organizationId, ct);
        organization.Name = input.Name!.Trim();
        organization.CompanyId = input.CompanyId!.Value;
        organization.TimeZone = input.TimeZone ?? organization.TimeZone;
        await db.SaveChangesInTurnAsync(ct);
        return (organization, errors, false);
    }

    public async Task<(CreatedOrganizationView? Created, ValidationErrors Errors, bool Conflict)> CreateAsync(NewOrganizationInput input, CancellationToken ct)
    {
        var errors = Validate(input.Name, input.CompanyId, input.TimeZone);
        if (UserAccounts.EmailProblem(input.AdminEmail) is { } emailProblem)
        {
            errors.Add("adminEmail", emailProblem);
        }
        if (errors.Any)
        {
            return (null, errors, false);
        }
        if (await db.Organizations.AnyAsync(o => o.CompanyId == input.CompanyId, ct))
        {
            errors.Add("companyId", $"{input.CompanyId} is another organization's companyId");
            return (null, errors, true);
        }
        var normalized = UserAccounts.Normalize(input.AdminEmail!);
        if (await db.Users.AnyAsync(u => u.NormalizedEmail == normalized, ct))
        {
            errors.Add("adminEmail", $"'{input.AdminEmail!.Trim()}' already has an account");
            return (null, errors, true);
        }
        // The organization and its first admin together: neither exists without the other; one
        // turn at the write gate for the whole transaction.
        return await db.WriteInTurnAsync(async () =>
        {
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            var organization = new Organization { Name = input.Name!.Trim(), CompanyId = input.CompanyId!.Value, TimeZone = input.TimeZone ?? "UTC", CreatedAt = time.GetUtcNow() };
            db.Organizations.Add(organization);
            await db.SaveChangesAsync(ct);
            var (admin, adminErrors, conflict) = await accounts.CreateAsync(organization.Id, new UserInput(input.AdminEmail, Roles.Admin, null), ct);
            if (admin is null)
            {
                return ((CreatedOrganizationView?)null, adminErrors, conflict);
            }
            await transaction.CommitAsync(ct);
            return (new CreatedOrganizationView(OrganizationView.From(organization), admin), errors, false);
        }, ct);
    }

    public Task<List<Organization>> ListAllAsync(CancellationToken ct) =>
        db.Organizations.AsNoTracking().OrderBy(o => o.Id).ToListAsync(ct);
}

internal static class OrganizationsApi
{
    public static RouteGroupBuilder MapOrganizations(this RouteGroupBuilder api)
    {
        api.MapGet("/organization", Get).WithTags("Team").WithSummary("This organization: name, companyId (sent by the confirmation webhook), time zone.");
        api.MapPut("/organization", Update).WithTags("Team").RequireAuthorization(RolePolicies.Admin)
            .WithSummary("Change the organization's name, companyId and time zone (an IANA id).");
        var all = api.MapGroup("/organizations").WithTags("Team").RequireAuthorization(RolePolicies.ServerAdmin);
        all.MapGet("/", List).WithSummary("Every organization on this hub (server admins).");
        all.MapPost("/", Create).WithSummary("Create an organization and its first admin (server admins); the admin's temporary password is in the answer, once.");
        return api;
    }

    private static async Task<Ok<OrganizationView>> Get(ClaimsPrincipal user, OrganizationSettings settings, CancellationToken ct) =>
        TypedResults.Ok(OrganizationView.From(await settings.GetAsync(user.OrganizationId(), ct)));

    private static async Task<Results<Ok<OrganizationView>, ValidationProblem, ProblemHttpResult>> Update(
        OrganizationInput input, ClaimsPrincipal user, OrganizationSettings settings, CancellationToken ct)
    {
        var (saved, errors, conflict) = await settings.UpdateAsync(user.OrganizationId(), input, ct);
        if (saved is not null)
        {
            return TypedResults.Ok(OrganizationView.From(saved));
        }
        var (field, reason) = errors.First;
        return conflict ? Problems.Conflict(field, reason) : Problems.Validation(errors);
    }

    private static async Task<Ok<List<OrganizationView>>> List(OrganizationSettings settings, CancellationToken ct) =>
        TypedResults.Ok((await settings.ListAllAsync(ct)).Select(OrganizationView.From).ToList());

    private static async Task<Results<Created<CreatedOrganizationView>, ValidationProblem, ProblemHttpResult>> Create(
        NewOrganizationInput input, OrganizationSettings settings, CancellationToken ct)
    {
        var (created, errors, conflict) = await settings.CreateAsync(input, ct);
        if (created is null)
        {
            var (field, reason) = errors.First;
            return conflict ? Problems.Conflict(field, reason) : Problems.Validation(errors);
        }
        return TypedResults.Created("/api/v1/organization", created);
    }
}
