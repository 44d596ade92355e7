using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Diagnostics;

namespace Postback.Infrastructure;

/// Turns request-binding failures (malformed JSON, a field of the wrong type, an unknown field,
/// an oversized or missing body) into problem+json answers that name the field and the reason.
/// Minimal APIs throw these only with RouteHandlerOptions.ThrowOnBadRequest on.
public sealed partial class BadRequestProblems(IProblemDetailsService problems) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken ct)
    {
        if (exception is InvalidOperationException invalid && invalid.Message.Contains("incomplete UTF-16", StringComparison.Ordinal))
        {
            // A lone surrogate escape ("\ud800") is valid JSON but not text; System.Text.Json only
            // notices when a string is read, long after binding. Nothing has been stored then:
            // every body is fully parsed before anything is written.
            exception = new BadHttpRequestException("", StatusCodes.Status400BadRequest, invalid);
        }
        if (exception is not BadHttpRequestException bad)
        {
            return false;
        }
        var (field, reason) = Describe(bad);
        context.Response.StatusCode = bad.StatusCode;
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            Exception = exception,
            ProblemDetails =
            {
                Status = bad.StatusCode,
                Title = bad.StatusCode == StatusCodes.Status413PayloadTooLarge ? "The request body is too large." : "The request is not valid.",
                Detail = field.Length > 0 ? $"{field}: {reason}" : reason,
                Extensions = { ["errors"] = new Dictionary<string, string[]> { [field.Length > 0 ? field : "body"] = [reason] } },
            },
        });
    }

    private static (string Field, string Reason) Describe(BadHttpRequestException bad)
    {
        if (bad.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return ("", "the request body is larger than this endpoint accepts");
        }
        if (bad.StatusCode == StatusCodes.Status415UnsupportedMediaType)
        {
            return ("", "send the body as application/json");
        }
        if (bad.InnerException is InvalidOperationException)
        {
            return ("", "the body holds a lone UTF-16 surrogate escape (\\uD800 to \\uDFFF), which is not text");
        }
        if (bad.InnerException is JsonException json)
        {
            var field = FieldFromPath(json.Path);
            var message = json.Message;
            if (message.Contains("could not be mapped to any .NET member", StringComparison.Ordinal))
            {
                return (field, "is not a known field");
            }
            if (message.Contains("could not be converted", StringComparison.Ordinal))
            {
                return (field, "has the wrong type");
            }
            if (message.Contains("missing required properties", StringComparison.Ordinal))
            {
                var missing = MissingProperty().Match(message);
                return (missing.Success ? missing.Groups[1].Value : field, "is required");
            }
            return (field, "the body is not valid JSON (" + FirstSentence(message) + ")");
        }
        var parameter = BindFailure().Match(bad.Message);
        if (parameter.Success)
        {
            var type = parameter.Groups[1].Value;
            return (parameter.Groups[2].Value, type.Contains("long", StringComparison.OrdinalIgnoreCase) || type.Contains("int", StringComparison.OrdinalIgnoreCase)
                ? $"must be a whole number, not '{parameter.Groups[3].Value}'"
                : $"'{parameter.Groups[3].Value}' is not a valid value");
        }
        if (bad.Message.Contains("no body was provided", StringComparison.OrdinalIgnoreCase))
        {
            return ("", "a JSON request body is required");
        }
        return ("", FirstSentence(bad.Message));
    }

    private static string FieldFromPath(string? path)
    {
        if (string.IsNullOrEmpty(path) || path == "$")
        {
            return "";
        }
        var p = path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : path.TrimStart('$');
        return p;
    }

    private static string FirstSentence(string message)
    {
        var cut = message.IndexOf(". ", StringComparison.Ordinal);
        return (cut > 0 ? message[..cut] : message).TrimEnd('.');
    }

    [GeneratedRegex("Failed to bind parameter \"(\\S+) ([^\"]+)\" from \"([^\"]*)\"")]
    private static partial Regex BindFailure();

    /// Some failures never reach the exception handler: the framework sets 413 or 415 while
    /// reading the body and returns. These answers still say what was wrong.
    public static async Task WriteStatusProblemAsync(StatusCodeContext status)
    {
        var http = status.HttpContext;
        var (title, reason) = http.Response.StatusCode switch
        {
            StatusCodes.Status413PayloadTooLarge => ("The request body is too large.",
                $"the request body is larger than this endpoint accepts ({http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize ?? 0} bytes)"),
            StatusCodes.Status415UnsupportedMediaType => ("Unsupported media type.", "send the body as application/json"),
            _ => ((string?)null, (string?)null),
        };
        var problems = http.RequestServices.GetRequiredService<IProblemDetailsService>();
        var context = new ProblemDetailsContext { HttpContext = http };
        if (reason is not null)
        {
            context.ProblemDetails.Title = title;
            context.ProblemDetails.Detail = "body: " + reason;
            context.ProblemDetails.Extensions["errors"] = new Dictionary<string, string[]> { ["body"] = [reason] };
        }
        await problems.TryWriteAsync(context);
    }

    [GeneratedRegex("missing required properties including: '([^']+)'")]
    private static partial Regex MissingProperty();
}
