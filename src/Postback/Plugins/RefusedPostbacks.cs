using System.Globalization;
using System.Threading.RateLimiting;

namespace Postback.Plugins;

/// Postback:Plugins, the limits on refused postbacks (docs/hardening.md, "Inbound flood").
public sealed class RefusedPostbackOptions : Infrastructure.ISettings
{
    // Refused postbacks (wrong secret, too large, invalid, disabled or unknown instance) a
    // plugin instance, and a client address, may cause per minute; past that the answer is 429
    // with Retry-After. Accepted postbacks never count.
    public int RefusedPerMinutePerInstance { get; set; } = 60;
    public int RefusedPerMinutePerAddress { get; set; } = 60;
    // Refused postbacks the inbound log keeps whole (with their payload) per instance and hour;
    // the rest of that hour are counted on one row.
    public int RefusedLoggedPerHour { get; set; } = 20;

    public void Check(Infrastructure.SettingChecks check)
    {
        check.Range(nameof(RefusedPerMinutePerInstance), RefusedPerMinutePerInstance, 1, 1_000_000);
        check.Range(nameof(RefusedPerMinutePerAddress), RefusedPerMinutePerAddress, 1, 1_000_000);
        check.Range(nameof(RefusedLoggedPerHour), RefusedLoggedPerHour, 0, 1_000_000);
    }
}

/// Keeps a flood of refused postbacks from filling the disk or the SQLite writer: anyone who
/// knows an instance id (small sequential integers) can send them.
///
/// Only refusals are limited, and only after the secret was checked, so the CRM's own postbacks
/// keep flowing while someone floods its instance. The limiter is ASP.NET Core's
/// (System.Threading.RateLimiting, fixed windows, one partition per instance and one per client
/// address) but applied here rather than as endpoint middleware: the middleware would count the
/// accepted postbacks too and throttle the CRM along with the attacker.
public sealed class RefusedPostbacks : IDisposable
{
    public sealed record Verdict(bool Limited, TimeSpan RetryAfter, bool KeepWhole);

    private sealed class Tally
    {
        public long? RowId;
        public long OrganizationId;
        public int Kept;
        public int Counted;
        public bool Dirty;
        public readonly SortedDictionary<string, int> Outcomes = new(StringComparer.Ordinal);
    }

    private readonly RefusedPostbackOptions _options;
    private readonly TimeProvider _time;
    private readonly PartitionedRateLimiter<string> _perInstance;
    private readonly PartitionedRateLimiter<string> _perAddress;
    private readonly Dictionary<(long Instance, DateTimeOffset Hour), Tally> _tallies = [];
    private readonly Lock _lock = new();

    public RefusedPostbacks(Microsoft.Extensions.Options.IOptions<RefusedPostbackOptions> options, TimeProvider time)
    {
        _options = options.Value;
        _time = time;
        _perInstance = Limiter(_options.RefusedPerMinutePerInstance);
        _perAddress = Limiter(_options.RefusedPerMinutePerAddress);
    }

    private static PartitionedRateLimiter<string> Limiter(int perMinute) =>
        PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetFixedWindowLimiter(key, _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = Math.Max(1, perMinute),
            Window = TimeSpan.FromMinutes(1),
            QueueLimit = 0,
            AutoReplenishment = true,
        }));

    /// A postback is being refused: whether its sender is past the limit (answer 429 instead),
    /// and whether the inbound log keeps it whole or only counts it. instanceId is null for an
    /// unknown instance, which no tenant's log shows.
    public Verdict Refuse(long? instanceId, long organizationId, string? address, string outcome)
    {
        var retryAfter = TimeSpan.Zero;
        var limited = !Acquire(_perAddress, "a:" + (address ?? "?"), ref retryAfter);
        if (instanceId is { } id)
        {
            limited |= !Acquire(_perInstance, "i:" + id.ToString(CultureInfo.InvariantCulture), ref retryAfter);
        }
        if (instanceId is null)
        {
            return new Verdict(limited, retryAfter, KeepWhole: false);
        }
        var now = _time.GetUtcNow();
        var hour = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 0, 0, TimeSpan.Zero);
        lock (_lock)
        {
            if (!_tallies.TryGetValue((instanceId.Value, hour), out var tally))
            {
                // Only this hour's tallies matter; an older one was flushed already.
                foreach (var old in _tallies.Where(t => t.Key.Hour < hour && !t.Value.Dirty).Select(t => t.Key).ToList())
                {
                    _tallies.Remove(old);
                }
                _tallies[(instanceId.Value, hour)] = tally = new Tally { OrganizationId = organizationId };
            }
            if (!limited && tally.Kept < _options.RefusedLoggedPerHour)
            {
                tally.Kept++;
                return new Verdict(false, retryAfter, KeepWhole: true);
            }
            tally.Counted++;
            var key = limited ? "limited" : outcome;
            tally.Outcomes[key] = tally.Outcomes.GetValueOrDefault(key) + 1;
            tally.Dirty = true;
            return new Verdict(limited, retryAfter, KeepWhole: false);
        }
    }

    private static bool Acquire(PartitionedRateLimiter<string> limiter, string key, ref TimeSpan retryAfter)
    {
        using var lease = limiter.AttemptAcquire(key);
        if (lease.IsAcquired)
        {
            return true;
        }
        if (lease.TryGetMetadata(MetadataName.RetryAfter, out var after) && after > retryAfter)
        {
            retryAfter = after;
        }
        return false;
    }

    /// Writes the counted refusals: one row per instance and hour, inserted once and then
    /// updated in place, so a flood adds one row however long it lasts.
    public async Task FlushAsync(IInboundLogStore log, CancellationToken ct)
    {
        List<((long Instance, DateTimeOffset Hour) Key, Tally Tally, int Counted, string Reason)> dirty;
        lock (_lock)
        {
            dirty = _tallies.Where(t => t.Value.Dirty)
                .Select(t => (t.Key, t.Value, t.Value.Counted, Describe(t.Key.Hour, t.Value)))
                .ToList();
            foreach (var d in dirty)
            {
                d.Tally.Dirty = false;
            }
        }
        foreach (var (key, tally, _, reason) in dirty)
        {
            try
            {
                tally.RowId = await log.WriteCountAsync(tally.RowId, new InboundLogEntry
                {
                    OrganizationId = tally.OrganizationId,
                    PluginInstanceId = key.Instance,
                    ReceivedAt = key.Hour,
                    Method = "-",
                    Outcome = "counted",
                    StatusCode = 0,
                    Reason = reason,
                    Payload = "",
                }, ct);
            }
            catch
            {
                lock (_lock)
                {
                    tally.Dirty = true;
                }
                throw;
            }
        }
    }

    private static string Describe(DateTimeOffset hour, Tally tally) =>
        $"{tally.Counted} more refused postbacks between {hour:HH:mm} and {hour.AddHours(1):HH:mm} UTC were counted, not kept "
        + $"({string.Join(", ", tally.Outcomes.Select(o => $"{o.Key}: {o.Value}"))}); the first {tally.Kept} of the hour are logged whole";

    public void Dispose()
    {
        _perInstance.Dispose();
        _perAddress.Dispose();
    }
}

/// Writes the counted refusals every few seconds, off the request path.
public sealed class RefusedPostbackLog(RefusedPostbacks refused, IInboundLogStore store, TimeProvider time, ILogger<RefusedPostbackLog> log)
    : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await FlushAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        await FlushAsync(CancellationToken.None);
    }

    private async Task FlushAsync(CancellationToken ct)
    {
        try
        {
            await refused.FlushAsync(store, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogWarning(e, "Writing the count of refused postbacks failed; it is tried again");
        }
    }
}
