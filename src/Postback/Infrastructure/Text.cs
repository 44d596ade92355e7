namespace Postback.Infrastructure;

public static class Text
{
    /// At most `max` characters, `marker` (say "…") included when something was cut, and never
    /// half of a surrogate pair: what is clipped goes into columns of that length, and PostgreSQL
    /// refuses both a longer value and invalid UTF-16.
    public static string Clip(string s, int max, string marker = "")
    {
        if (s.Length <= max)
        {
            return s;
        }
        var cut = Math.Max(max - marker.Length, 0);
        if (cut > 0 && char.IsHighSurrogate(s[cut - 1]))
        {
            cut--;
        }
        return s[..cut] + marker;
    }

    public static string? ClipOrNull(string? s, int max, string marker = "") => s is null ? null : Clip(s, max, marker);
}
