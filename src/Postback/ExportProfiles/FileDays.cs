using System.Globalization;

namespace Postback.ExportProfiles;

/// Days and schedules in a profile's time zone, as plain functions over instants.
/// - A row belongs to the day, in the profile's zone, on which its event is due (event time +
///   export delay). Day D is [first instant of D, first instant of D+1).
/// - The run for day D is due at the schedule's time on D+1. A local time the clocks skip
///   (spring forward) moves forward by the length of the gap (02:30 becomes 03:30; a skipped
///   midnight becomes the instant the clocks jump, the first instant of that day); a time they
///   pass twice (fall back), the first of the two. So every day has exactly one run, due once.
public static class FileDays
{
    public static TimeZoneInfo? FindTimeZone(string id)
    {
        if (string.IsNullOrWhiteSpace(id))
        {
            return null;
        }
        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(id);
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            return null;
        }
    }

    public static TimeOnly ParseTime(string time) => TimeOnly.ParseExact(time, "HH:mm", CultureInfo.InvariantCulture);

    /// The instant a local wall-clock time happens in the zone (see the rules above).
    public static DateTimeOffset ToInstant(DateTime local, TimeZoneInfo zone)
    {
        local = DateTime.SpecifyKind(local, DateTimeKind.Unspecified);
        if (zone.IsInvalidTime(local))
        {
            // In the gap: read with the offset from before the jump, it lands as far after the
            // jump as it was after the gap's start.
            var before = zone.GetUtcOffset(local.AddHours(-6));
            var instant = new DateTimeOffset(local.Ticks - before.Ticks, TimeSpan.Zero);
            return instant;
        }
        if (zone.IsAmbiguousTime(local))
        {
            var offsets = zone.GetAmbiguousTimeOffsets(local);
            var largest = offsets.Max();
            return new DateTimeOffset(local.Ticks - largest.Ticks, TimeSpan.Zero);
        }
        var offset = zone.GetUtcOffset(local);
        return new DateTimeOffset(local.Ticks - offset.Ticks, TimeSpan.Zero);
    }

    public static DateOnly DayOf(DateTimeOffset instant, TimeZoneInfo zone) =>
        DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(instant, zone).DateTime);

    /// [start, end) of a day in the zone, as UTC instants.
    public static (DateTimeOffset Start, DateTimeOffset End) Window(DateOnly day, TimeZoneInfo zone) =>
        (ToInstant(day.ToDateTime(TimeOnly.MinValue), zone), ToInstant(day.AddDays(1).ToDateTime(TimeOnly.MinValue), zone));

    /// When the run for a day is due: the schedule's time on the next day.
    public static DateTimeOffset RunDueAt(DateOnly day, TimeOnly time, TimeZoneInfo zone) =>
        ToInstant(day.AddDays(1).ToDateTime(time), zone);

    /// The latest day whose run is due at <paramref name="now"/>.
    public static DateOnly LatestDueDay(DateTimeOffset now, TimeOnly time, TimeZoneInfo zone)
    {
        var yesterday = DayOf(now, zone).AddDays(-1);
        return RunDueAt(yesterday, time, zone) <= now ? yesterday : yesterday.AddDays(-1);
    }

    public static string Format(DateOnly day) => day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
}
