using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Postback.Infrastructure;
using Postback.Organizations;

namespace Postback.Team;

public sealed record PasswordResetView(string TemporaryPassword);

/// Operator accounts, for admins: invite, change role, disable, reset a password.
internal static class UsersApi
{
    public static RouteGroupBuilder MapUsers(this RouteGroupBuilder api)
    {
        var group = api.MapGroup("/users").WithTags("Team").RequireAuthorization(RolePolicies.Admin);
        group.MapGet("/", List).WithSummary("The organization's operator accounts.");
        group.MapPost("/", Create).WithSummary("Invite a user {email, role, password?}: without a password the answer holds a temporary one, shown once, to be replaced at first login.");
        group.MapPut("/{id:long}", Change).WithSummary("Change a user's role or disable them {role?, disabled?}; their sessions end.");
        group.MapPost("/{id:long}/reset-password", ResetPassword).WithSummary("A new temporary password, shown once; the user's sessions end.");
        return api;
    }

    private static async Task<Ok<List<UserView>>> List(ClaimsPrincipal user, UserAccounts accounts, CancellationToken ct) =>
        TypedResults.Ok((await accounts.ListAsync(user.OrganizationId(), ct)).Select(UserView.From).ToList());

    private static async Task<Results<Created<InvitedUserView>, ValidationProblem, ProblemHttpResult>> Create(
        UserInput input, ClaimsPrincipal user, UserAccounts accounts, CancellationToken ct)
    {
        var (created, errors, conflict) = await accounts.CreateAsync(user.OrganizationId(), input, ct);
        if (created is null)
        {
            var (field, reason) = errors.First;
            return conflict ? Problems.Conflict(field, reason) : Problems.Validation(errors);
        }
        return TypedResults.Created($"/api/v1/users/{created.User.Id}", created);
    }

    private static async Task<Results<Ok<UserView>, ValidationProblem, ProblemHttpResult>> Change(
        long id, UserChange change, ClaimsPrincipal user, UserAccounts accounts, CancellationToken ct)
    {
        var (changed, errors, conflict) = await accounts.ChangeAsync(user.OrganizationId(), id, change, ct);
        if (changed is not null)
        {
            return TypedResults.Ok(UserView.From(changed));
        }
        if (!errors.Any)
        {
            return Problems.NotFound($"There is no user {id}.");
        }
        var (field, reason) = errors.First;
        return conflict ? Problems.Conflict(field, reason) : Problems.Validation(errors);
    }

    private static async Task<Results<Ok<PasswordResetView>, ProblemHttpResult>> ResetPassword(
        long id, ClaimsPrincipal user, UserAccounts accounts, CancellationToken ct) =>
        await accounts.ResetPasswordAsync(user.OrganizationId(), id, ct) is { } temporary
            ? TypedResults.Ok(new PasswordResetView(temporary))
            : Problems.NotFound($"There is no user {id}.");
}
