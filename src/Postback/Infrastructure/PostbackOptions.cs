namespace Postback.Infrastructure;

/// The "Postback" configuration section (README, "Configuration").
public sealed class PostbackOptions : ISettings
{
    public const string Section = "Postback";
    public const int MinimumBootstrapKeyLength = 16;

    public StorageOptions Storage { get; set; } = new();
    public string? BootstrapApiKey { get; set; }
    public OutboundOptions Outbound { get; set; } = new();
    public DeliveryOptions Delivery { get; set; } = new();
    public FileExports.FileExportOptions FileExports { get; set; } = new();
    // The address a CRM reaches the hub at (behind a proxy or a public name); unset, the
    // address a request came in on.
    public string? PublicBaseUrl { get; set; }

    public void Check(SettingChecks check)
    {
        if (BootstrapApiKey?.Trim() is { Length: > 0 and < MinimumBootstrapKeyLength })
        {
            check.Fail(nameof(BootstrapApiKey), $"must be at least {MinimumBootstrapKeyLength} characters");
        }
        check.HttpUrl(nameof(PublicBaseUrl), PublicBaseUrl);
        Storage.Check(check.Under(nameof(Storage)));
        Outbound.Check(check.Under(nameof(Outbound)));
        Delivery.Check(check.Under(nameof(Delivery)));
        FileExports.Check(check.Under(nameof(FileExports)));
    }
}

public sealed class DeliveryOptions : ISettings
{
    // Off only for a process that should take API traffic but never send.
    public bool Enabled { get; set; } = true;
    // Requests in flight at once, and at most this many to one endpoint, so a receiver that
    // hangs can hold only part of the sender.
    public int MaxInFlight { get; set; } = 512;
    public int MaxInFlightPerEndpoint { get; set; } = 256;
    public int ClaimBatch { get; set; } = 500;
    // A claimed delivery is this worker's until then; a crashed worker's deliveries come back
    // after it. Must be well above the outbound timeout.
    public int LeaseSeconds { get; set; } = 60;
    // How often an idle worker looks for due deliveries (events in this process wake it at once).
    public int PollMilliseconds { get; set; } = 250;
    // Consecutive failures after which an endpoint is held back and probed one request at a time.
    public int FailureThreshold { get; set; } = 5;
    // The first retry's delay; each later one doubles it, up to the profile's cap.
    public double FirstRetrySeconds { get; set; } = 2;
    public int ShutdownSeconds { get; set; } = 10;

    public void Check(SettingChecks check)
    {
        check.Range(nameof(MaxInFlight), MaxInFlight, 1, 100_000);
        check.Range(nameof(MaxInFlightPerEndpoint), MaxInFlightPerEndpoint, 1, 100_000);
        check.Range(nameof(ClaimBatch), ClaimBatch, 1, 10_000);
        check.Range(nameof(LeaseSeconds), LeaseSeconds, 1, 86_400);
        check.Range(nameof(PollMilliseconds), PollMilliseconds, 1, 3_600_000);
        check.Range(nameof(FailureThreshold), FailureThreshold, 1, 1_000_000);
        check.Range(nameof(FirstRetrySeconds), FirstRetrySeconds, 0.001, 86_400);
        check.Range(nameof(ShutdownSeconds), ShutdownSeconds, 0, 3_600);
    }
}

public sealed class StorageOptions : ISettings
{
    // "sqlite" (default) or "postgres".
    public string Provider { get; set; } = "sqlite";
    // Where the SQLite file lives when ConnectionStrings:Postback is not set.
    public string DataDirectory { get; set; } = "data";

    public void Check(SettingChecks check)
    {
        if (Provider.Trim().ToLowerInvariant() is not ("sqlite" or "postgres" or "postgresql"))
        {
            check.Fail(nameof(Provider), $"must be sqlite or postgres, not '{Text.Clip(Provider, 100, "…")}'");
        }
        if (string.IsNullOrWhiteSpace(DataDirectory))
        {
            check.Fail(nameof(DataDirectory), "must name a directory");
        }
    }
}

public sealed class OutboundOptions : ISettings
{
    // Loopback, private, link-local and similar addresses are refused unless this is on.
    public bool AllowPrivateNetworks { get; set; }
    public int TimeoutSeconds { get; set; } = 15;

    public void Check(SettingChecks check) => check.Range(nameof(TimeoutSeconds), TimeoutSeconds, 1, 3_600);
}
