namespace Postback.Infrastructure;

/// The "Postback" configuration section (README, "Configuration").
public sealed class PostbackOptions
{
    public const string Section = "Postback";

    public StorageOptions Storage { get; set; } = new();
    public string? BootstrapApiKey { get; set; }
    public OutboundOptions Outbound { get; set; } = new();
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
