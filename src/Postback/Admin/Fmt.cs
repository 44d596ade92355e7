using System.Globalization;

namespace Postback.Admin;

/// How the pages show values: times in UTC, to the second, and marked as such.
public static class Fmt
{
    public static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + " UTC";

    public static string Time(DateTimeOffset? t) => t is { } v ? Time(v) : "";

    public static string Ms(double ms) => ms.ToString("0.#", CultureInfo.InvariantCulture) + " ms";

    /// A datetime-local input's value (UTC).
    public static string Input(DateTimeOffset? t) => t is { } v ? v.UtcDateTime.ToString("yyyy-MM-ddTHH:mm", CultureInfo.InvariantCulture) : "";
}
