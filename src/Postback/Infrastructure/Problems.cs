using Microsoft.AspNetCore.Http.HttpResults;

namespace Postback.Infrastructure;

public static class Problems
{
    /// 400 application/problem+json whose detail names the first field and reason and whose
    /// `errors` holds them all.
    public static ValidationProblem Validation(ValidationErrors errors)
    {
        var (field, reason) = errors.First;
        var detail = errors.Count == 1
            ? $"{field}: {reason}"
            : $"{field}: {reason} (and {errors.Count - 1} more field(s), see errors)";
        return TypedResults.ValidationProblem(errors.ToDictionary(), detail: detail, title: "The request is not valid.");
    }

    public static ValidationProblem Validation(string field, string reason)
    {
        var errors = new ValidationErrors();
        errors.Add(field, reason);
        return Validation(errors);
    }

    public static ProblemHttpResult NotFound(string what) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not found.", detail: what);

    public static ProblemHttpResult Conflict(string field, string reason) =>
        TypedResults.Problem(
            statusCode: StatusCodes.Status409Conflict,
            title: "Conflict.",
            detail: $"{field}: {reason}",
            extensions: new Dictionary<string, object?> { ["errors"] = new Dictionary<string, string[]> { [field] = [reason] } });
}
