namespace Postback.Infrastructure;

/// The "Postback" configuration section (README, "Configuration").
public sealed class PostbackOptions
{
    public const string Section = "Postback";

    public StorageOptions Storage { get; set; } = new();
    public string? BootstrapApiKey { get; set; }
    public OutboundOptions Outbound { get; set; } = new();
    public DeliveryOptions Delivery { get; set; } = new();
    public FileExports.FileExportOptions FileExports { get; set; } = new();
}

public sealed class DeliveryOptions
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
}

public sealed class StorageOptions
{
    // "sqlite" (default) or "postgres".
    public string Provider { get; set; } = "sqlite";
    // Where the SQLite file lives when ConnectionStrings:Postback is not set.
    public string DataDirectory { get; set; } = "data";
}

public sealed class OutboundOptions
{
    // Loopback, private, link-local and similar addresses are refused unless this is on.
    public bool AllowPrivateNetworks { get; set; }
    public int TimeoutSeconds { get; set; } = 15;
}
