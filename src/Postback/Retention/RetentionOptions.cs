using System.Globalization;

namespace Postback.Retention;

/// Postback:Retention (docs/retention.md). Each period is a TimeSpan written d.hh:mm:ss, or
/// "off". Read once at start: a value that does not parse stops the hub with a message naming
/// the option, rather than leaving data to grow (or vanish) unnoticed.
public sealed record RetentionOptions(
    TimeSpan? FinishedDeliveries,
    TimeSpan? Orders,
    TimeSpan? InboundLog,
    TimeSpan SweepInterval,
    int BatchSize)
{
    public const string Section = "Postback:Retention";
    public const string LegacyInboundLogDays = "Postback:Plugins:InboundLogDays";

    public static readonly TimeSpan DefaultFinishedDeliveries = TimeSpan.FromDays(30);
    public static readonly TimeSpan DefaultInboundLog = TimeSpan.FromDays(30);
    public static readonly TimeSpan DefaultSweepInterval = TimeSpan.FromMinutes(10);
    // 100 rows a batch: 1,100,000 rows went in 43 s while p99 event latency at 500/s stayed 30 ms on
    // SQLite (bench/run.sh --sweep 1000000); 500 a batch deleted them in 24 s but held the writer
    // long enough to push p99 to 77 ms.
    public const int DefaultBatchSize = 100;

    public static RetentionOptions Default { get; } =
        new(DefaultFinishedDeliveries, null, DefaultInboundLog, DefaultSweepInterval, DefaultBatchSize);

    /// The options and the warnings to log once a logger exists (a deprecated key in use).
    /// Throws InvalidOperationException naming the option when a value is not valid.
    public static (RetentionOptions Options, IReadOnlyList<string> Warnings) Read(IConfiguration config)
    {
        var warnings = new List<string>();
        var section = config.GetSection(Section);
        var finished = Period(section, "FinishedDeliveries", DefaultFinishedDeliveries);
        var orders = Period(section, "Orders", null);
        TimeSpan? inbound;
        var legacy = config[LegacyInboundLogDays];
        if (section["InboundLog"] is null && !string.IsNullOrWhiteSpace(legacy))
        {
            if (!int.TryParse(legacy, NumberStyles.Integer, CultureInfo.InvariantCulture, out var days) || days < 0 || days > 36_500)
            {
                throw new InvalidOperationException($"{LegacyInboundLogDays} must be a whole number of days from 0 to 36500, not '{legacy}'.");
            }
            inbound = days == 0 ? null : TimeSpan.FromDays(days);
            warnings.Add($"{LegacyInboundLogDays} is deprecated; it is read as {Section}:InboundLog = {Describe(inbound)}. Set that instead.");
        }
        else
        {
            inbound = Period(section, "InboundLog", DefaultInboundLog);
            if (!string.IsNullOrWhiteSpace(legacy))
            {
                warnings.Add($"{LegacyInboundLogDays} is deprecated and ignored: {Section}:InboundLog is set.");
            }
        }
        var interval = Period(section, "SweepInterval", DefaultSweepInterval, allowOff: false)!.Value;
        if (interval < TimeSpan.FromSeconds(1) || interval > TimeSpan.FromDays(1))
        {
            throw Invalid("SweepInterval", section["SweepInterval"], "must be from 00:00:01 to 1.00:00:00");
        }
        var batch = DefaultBatchSize;
        if (section["BatchSize"] is { } text
            && (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out batch) || batch is < 1 or > 10_000))
        {
            throw Invalid("BatchSize", text, "must be between 1 and 10000");
        }
        return (new RetentionOptions(finished, orders, inbound, interval, batch), warnings);
    }

    public static string Describe(TimeSpan? period) => period is { } p ? p.ToString("c", CultureInfo.InvariantCulture) : "off";

    private static TimeSpan? Period(IConfigurationSection section, string name, TimeSpan? fallback, bool allowOff = true)
    {
        var text = section[name];
        if (text is null || (text.Length == 0 && allowOff && fallback is null))
        {
            return fallback;
        }
        var value = text.Trim();
        if (allowOff && value.Equals("off", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }
        if (!TimeSpan.TryParseExact(value, ["c", "g"], CultureInfo.InvariantCulture, out var period))
        {
            throw Invalid(name, text, "is not a duration; write it as d.hh:mm:ss, e.g. 30.00:00:00" + (allowOff ? ", or off" : ""));
        }
        if (period <= TimeSpan.Zero)
        {
            throw Invalid(name, text, "must be longer than zero" + (allowOff ? " (write off to keep the data for ever)" : ""));
        }
        return period;
    }

    private static InvalidOperationException Invalid(string name, string? value, string reason) =>
        new($"{Section}:{name} {reason}; it is '{value}'.");
}
