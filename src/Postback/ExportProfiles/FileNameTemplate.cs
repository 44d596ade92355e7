using System.Globalization;
using System.Text;

namespace Postback.ExportProfiles;

/// A file name template such as "{profile}_{route}_{date:yyyyMMdd}.csv". Tokens:
/// {profile} (the profile's name made file-safe), {route} (the route's name) and
/// {date} or {date:FORMAT} (the run's day, a .NET date format; yyyy-MM-dd by default).
/// The rendered name never holds a path separator: a file lands in the destination's
/// directory, nowhere else.
public static class FileNameTemplate
{
    public const int MaxLength = 200;
    private const string DefaultDateFormat = "yyyy-MM-dd";

    public static string? Check(string template)
    {
        if (template.Length == 0)
        {
            return "is required, such as {profile}_{route}_{date:yyyyMMdd}.csv";
        }
        if (template.Length > MaxLength || template.Any(char.IsControl))
        {
            return $"must be at most {MaxLength} characters, without control characters";
        }
        if (template.Contains('/') || template.Contains('\\'))
        {
            return "must be a file name, without a path separator (/ or \\); the directory setting says where it goes";
        }
        string rendered;
        try
        {
            rendered = Render(template, "profile", "route1", new DateOnly(2026, 11, 30));
        }
        catch (FormatException e)
        {
            return e.Message;
        }
        if (rendered.Contains('/') || rendered.Contains('\\'))
        {
            return "its date format puts a path separator (/ or \\) in the name; use a format such as yyyyMMdd or yyyy-MM-dd";
        }
        if (rendered is "." or ".." || rendered.EndsWith(".part", StringComparison.OrdinalIgnoreCase))
        {
            return "must not be . or .. or end in .part (the suffix of a file still being uploaded)";
        }
        return null;
    }

    /// Throws FormatException naming the problem for an unknown token or an unclosed brace.
    public static string Render(string template, string profileName, string routeName, DateOnly day)
    {
        var sb = new StringBuilder();
        var i = 0;
        while (i < template.Length)
        {
            var c = template[i];
            if (c == '}')
            {
                throw new FormatException("has a } without its {; tokens are {profile}, {route} and {date:FORMAT}");
            }
            if (c != '{')
            {
                sb.Append(c);
                i++;
                continue;
            }
            var end = template.IndexOf('}', i);
            if (end < 0)
            {
                throw new FormatException("has a { without its }; tokens are {profile}, {route} and {date:FORMAT}");
            }
            var token = template[(i + 1)..end];
            var colon = token.IndexOf(':');
            var name = colon < 0 ? token : token[..colon];
            var format = colon < 0 ? null : token[(colon + 1)..];
            switch (name)
            {
                case "profile" when format is null:
                    sb.Append(Safe(profileName));
                    break;
                case "route" when format is null:
                    sb.Append(Safe(routeName));
                    break;
                case "date":
                    if (format is { Length: 0 } || format?.Contains('{') == true)
                    {
                        throw new FormatException("{date:} needs a date format after the colon, such as {date:yyyyMMdd}");
                    }
                    try
                    {
                        sb.Append(day.ToString(format ?? DefaultDateFormat, CultureInfo.InvariantCulture));
                    }
                    catch (FormatException)
                    {
                        throw new FormatException($"'{format}' is not a date format; use one such as yyyyMMdd");
                    }
                    break;
                default:
                    throw new FormatException($"{{{token}}} is not a token; use {{profile}}, {{route}} and {{date}} or {{date:FORMAT}}");
            }
            i = end + 1;
        }
        return sb.ToString();
    }

    /// Letters, digits, '-', '_' and '.' stay; every run of anything else becomes one '_'.
    public static string Safe(string name)
    {
        var sb = new StringBuilder(name.Length);
        foreach (var c in name.Trim())
        {
            if (char.IsAsciiLetterOrDigit(c) || c is '-' or '.')
            {
                sb.Append(c);
            }
            else if (sb.Length == 0 || sb[^1] != '_')
            {
                sb.Append('_');
            }
        }
        var safe = sb.ToString().Trim('_', '.');
        return safe.Length == 0 ? "export" : safe;
    }
}
