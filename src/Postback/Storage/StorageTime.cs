namespace Postback.Storage;

/// Both databases keep times as UTC to the microsecond: PostgreSQL's timestamptz cannot hold
/// more, and SQLite stores the same value as UTC ticks (a long), so times compare and sort in SQL.
public static class StorageTime
{
    /// The time as stored: UTC, cut to the microsecond.
    public static DateTimeOffset Normalize(DateTimeOffset t) => new(t.UtcTicks - (t.UtcTicks % 10), TimeSpan.Zero);

    public static bool IsNormal(DateTimeOffset t) => t.Offset == TimeSpan.Zero && t.UtcTicks % 10 == 0;

    /// SQLite's column value: UTC ticks, to the microsecond.
    public static long ToTicks(DateTimeOffset t) => t.UtcTicks - (t.UtcTicks % 10);

    public static DateTimeOffset FromTicks(long ticks) => new(ticks, TimeSpan.Zero);
}
