using Microsoft.Extensions.Configuration;
using Postback.Retention;
using Postback.Tests.Support;

namespace Postback.Tests.Retention;

public sealed class RetentionOptionsTests
{
    private static (RetentionOptions Options, IReadOnlyList<string> Warnings) Read(params (string Key, string Value)[] values) =>
        RetentionOptions.Read(new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build());

    [Fact]
    public void On_by_default_for_deliveries_and_the_inbound_log_and_off_for_orders()
    {
        var (o, warnings) = Read();
        Assert.Equal(TimeSpan.FromDays(30), o.FinishedDeliveries);
        Assert.Null(o.Orders);
        Assert.Equal(TimeSpan.FromDays(30), o.InboundLog);
        Assert.Equal(TimeSpan.FromMinutes(10), o.SweepInterval);
        Assert.Empty(warnings);
    }

    [Fact]
    public void Periods_are_written_d_hh_mm_ss_or_off()
    {
        var (o, _) = Read(
            ("Postback:Retention:FinishedDeliveries", "7.00:00:00"),
            ("Postback:Retention:Orders", "365.00:00:00"),
            ("Postback:Retention:InboundLog", "off"),
            ("Postback:Retention:SweepInterval", "00:00:05"));
        Assert.Equal(TimeSpan.FromDays(7), o.FinishedDeliveries);
        Assert.Equal(TimeSpan.FromDays(365), o.Orders);
        Assert.Null(o.InboundLog);
        Assert.Equal(TimeSpan.FromSeconds(5), o.SweepInterval);
    }

    [Theory]
    [InlineData("FinishedDeliveries", "30 days")]
    [InlineData("FinishedDeliveries", "00:00:00")]
    [InlineData("Orders", "-1.00:00:00")]
    [InlineData("InboundLog", "thirty")]
    [InlineData("SweepInterval", "off")]
    [InlineData("SweepInterval", "2.00:00:00")]
    [InlineData("BatchSize", "0")]
    public void A_bad_value_is_refused_naming_the_option(string option, string value)
    {
        var e = Assert.Throws<InvalidOperationException>(() => Read(($"Postback:Retention:{option}", value)));
        Assert.Contains($"Postback:Retention:{option}", e.Message, StringComparison.Ordinal);
        Assert.Contains(value, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_old_InboundLogDays_key_still_works_and_says_it_is_deprecated()
    {
        var (o, warnings) = Read(("Postback:Plugins:InboundLogDays", "7"));
        Assert.Equal(TimeSpan.FromDays(7), o.InboundLog);
        Assert.Contains("deprecated", Assert.Single(warnings), StringComparison.Ordinal);

        Assert.Null(Read(("Postback:Plugins:InboundLogDays", "0")).Options.InboundLog);

        // The new key wins.
        var (both, bothWarnings) = Read(("Postback:Plugins:InboundLogDays", "7"), ("Postback:Retention:InboundLog", "3.00:00:00"));
        Assert.Equal(TimeSpan.FromDays(3), both.InboundLog);
        Assert.Contains("ignored", Assert.Single(bothWarnings), StringComparison.Ordinal);

        Assert.Contains("Postback:Plugins:InboundLogDays", Assert.Throws<InvalidOperationException>(() => Read(("Postback:Plugins:InboundLogDays", "x"))).Message,
            StringComparison.Ordinal);
    }

    [Fact]
    public void The_hub_does_not_start_with_a_bad_value()
    {
        using var hub = new HubFactory(settings: new Dictionary<string, string?> { ["Postback:Retention:FinishedDeliveries"] = "a month" });
        var e = Assert.ThrowsAny<Exception>(hub.StartServer);
        var messages = string.Join(" | ", Flatten(e).Select(x => x.Message));
        Assert.Contains("Postback:Retention:FinishedDeliveries", messages, StringComparison.Ordinal);
    }

    private static IEnumerable<Exception> Flatten(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            yield return x;
        }
    }
}
