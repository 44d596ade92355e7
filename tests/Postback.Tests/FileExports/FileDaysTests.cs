using Microsoft.Extensions.Time.Testing;
using Postback.ExportProfiles;
using Postback.FileExports;
using Postback.Tests.Support;

namespace Postback.Tests.FileExports;

/// Days and the schedule in a profile's time zone, with the clock moved by the test, across
/// New York's daylight-saving changes of 2026 (8 March: 02:00 -> 03:00; 1 November:
/// 02:00 -> 01:00).
public sealed class FileDaysTests
{
    private static readonly TimeZoneInfo NewYork = FileDays.FindTimeZone("America/New_York")!;

    private static DateTimeOffset Utc(int month, int day, int hour, int minute = 0) => new(2026, month, day, hour, minute, 0, TimeSpan.Zero);

    [Theory]
    // An ordinary day: 24 hours, midnight EST = 05:00 UTC.
    [InlineData("2026-11-30", "2026-11-30T05:00:00Z", "2026-12-01T05:00:00Z", 24)]
    // Spring forward: the day has 23 hours.
    [InlineData("2026-03-08", "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z", 23)]
    // Fall back: the day has 25 hours.
    [InlineData("2026-11-01", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z", 25)]
    public void A_day_is_its_local_midnight_to_the_next(string day, string start, string end, int hours)
    {
        var (s, e) = FileDays.Window(DateOnly.Parse(day, System.Globalization.CultureInfo.InvariantCulture), NewYork);
        Assert.Equal(DateTimeOffset.Parse(start, System.Globalization.CultureInfo.InvariantCulture), s);
        Assert.Equal(DateTimeOffset.Parse(end, System.Globalization.CultureInfo.InvariantCulture), e);
        Assert.Equal(hours, (e - s).TotalHours);
    }

    [Fact]
    public void A_schedule_time_the_clocks_skip_moves_forward_by_the_gap_and_one_they_repeat_runs_the_first_time()
    {
        // 02:30 does not exist on 8 March: moved forward by the hour the clocks skip, 03:30 EDT = 07:30 UTC.
        Assert.Equal(Utc(3, 8, 7, 30), FileDays.RunDueAt(new DateOnly(2026, 3, 7), new TimeOnly(2, 30), NewYork));
        // 01:30 happens twice on 1 November: the first, EDT = 05:30 UTC.
        Assert.Equal(Utc(11, 1, 5, 30), FileDays.RunDueAt(new DateOnly(2026, 10, 31), new TimeOnly(1, 30), NewYork));
        // 00:15 after the change: EST.
        Assert.Equal(Utc(11, 2, 5, 15), FileDays.RunDueAt(new DateOnly(2026, 11, 1), new TimeOnly(0, 15), NewYork));
    }

    [Fact]
    public void The_latest_due_day_turns_over_exactly_at_the_scheduled_time()
    {
        var time = new TimeOnly(0, 15);
        Assert.Equal(new DateOnly(2026, 11, 29), FileDays.LatestDueDay(Utc(12, 1, 5, 14), time, NewYork));
        Assert.Equal(new DateOnly(2026, 11, 30), FileDays.LatestDueDay(Utc(12, 1, 5, 15), time, NewYork));
        // In UTC it is already 2 December, in New York still the 1st.
        Assert.Equal(new DateOnly(2026, 11, 30), FileDays.LatestDueDay(Utc(12, 2, 2), time, NewYork));
    }

    /// The schedule through both changes with the hub's real scheduler: one run per route per
    /// day, each created exactly when its local time comes, never twice.
    [Theory]
    [InlineData(3, 6, 4)]   // 6 March to 10 March, over spring forward
    [InlineData(10, 30, 4)] // 30 October to 3 November, over fall back
    public async Task The_scheduler_creates_each_day_once_at_its_local_time_across_a_daylight_saving_change(int month, int firstDay, int days)
    {
        var start = new DateOnly(2026, month, firstDay);
        var time = new FakeTimeProvider(FileDays.ToInstant(start.ToDateTime(new TimeOnly(12, 0)), NewYork));
        await using var hub = await FileHub.StartAsync(time);
        using var api = hub.Api();
        var (remote, _) = FileServers.NewDirectory(FileDestinations.Folder);
        var file = FileServers.Settings(FileDestinations.Folder, remote);
        file["schedule"] = new { time = "02:30", timeZone = "America/New_York" };
        var profileId = await FileScenario.CreateAsync(api, file);

        for (var d = 0; d < days; d++)
        {
            var day = start.AddDays(d);
            var due = FileDays.RunDueAt(day, new TimeOnly(2, 30), NewYork);
            time.SetUtcNow(due - TimeSpan.FromSeconds(1));
            await hub.PassAsync();
            Assert.DoesNotContain(await FileScenario.RunsAsync(api, profileId), r => r!["day"]!.GetValue<string>() == FileDays.Format(day));
            time.SetUtcNow(due);
            await hub.PassAsync();
            var runs = await FileScenario.RunsAsync(api, profileId);
            Assert.Equal(2, runs.Count(r => r!["day"]!.GetValue<string>() == FileDays.Format(day)));
            Assert.Equal(2 * (d + 1), runs.Count);
        }
    }
}
