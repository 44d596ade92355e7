using Postback.ExportProfiles;

namespace Postback.Storage;

// Every tenant-owned row carries OrganizationId, and every query filters on it: one
// organization never sees another's data.

public sealed class Organization
{
    public long Id { get; set; }
    public required string Name { get; set; }
    // The numeric id the order confirmation webhook sends as companyId.
    public long CompanyId { get; set; }
    // An IANA zone (e.g. "Europe/Prague"): the admin UI shows times in it.
    public string TimeZone { get; set; } = "UTC";
    public DateTimeOffset CreatedAt { get; set; }
}

public sealed class ApiKey
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    public required string Name { get; set; }
    // SHA-256 of the key, hex. Keys are 256-bit random (or operator-chosen bootstrap keys), so a
    // fast hash is enough; the key itself is never stored.
    public required string KeyHash { get; set; }
    // The first characters, so an operator can tell keys apart.
    public required string Prefix { get; set; }
    // admin, operator or viewer (Team.Roles).
    public required string Role { get; set; }
    // The user who made it ("key:<name>" for a key made with a key; null for the bootstrap key):
    // a key acts for its maker, so one made by a server admin may create organizations.
    public string? CreatedBy { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? LastUsedAt { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }
}

public sealed class Campaign
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    public required string CampaignId { get; set; }
    public required string Name { get; set; }
    public List<Product> Products { get; set; } = [];
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

public sealed class Product
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    public long CampaignKey { get; set; }
    public required string ProductId { get; set; }
    public string? Sku { get; set; }
    public required string Name { get; set; }
    public decimal? Price { get; set; }
    public bool Recurring { get; set; }
}

public sealed class StoredOrder
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    public long OrderId { get; set; }
    public string? CustomerId { get; set; }
    public string? CampaignId { get; set; }
    public bool IsTestCard { get; set; }
    // The order's fields and items as JSON (see OrderJson): CRMs send any number of extra
    // fields, all of which stay usable as merge tags.
    public required string Data { get; set; }
    // Bumped on every write and checked by it: two processes merging postbacks into the same
    // order cannot overwrite each other's fields; the second one reloads and merges again.
    public long Version { get; set; }
    // Which delivery wrote each field captured from a receiver's answer (see CaptureWriter):
    // JSON, null until the first capture. The values themselves are in Data, as extra fields.
    public string? CaptureSources { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

public sealed class OrderEvent
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    // The client's idempotency key (or one we made up): unique per organization.
    public required string EventId { get; set; }
    public required string Type { get; set; }
    public long OrderKey { get; set; }
    public StoredOrder? Order { get; set; }
    public long OrderId { get; set; }
    public DateTimeOffset OccurredAt { get; set; }
    public DateTimeOffset ReceivedAt { get; set; }
}

public sealed class ExportProfile
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    public required string Name { get; set; }
    public string Type { get; set; } = "postback";
    public required string PostbackUrl { get; set; }
    public int ExportDelayMinutes { get; set; }
    public bool Enabled { get; set; } = true;
    // Retries never stop by default (the CRMs' promise); the backoff grows to this cap.
    public int RetryCapMinutes { get; set; } = 60;
    // When set, a delivery still failing this long after it was first due is marked failed.
    public int? GiveUpAfterHours { get; set; }
    // Standard Webhooks signing secret (whsec_…): when set, every request is signed.
    public string? SigningSecret { get; set; }
    // "none" or "perOrder": whether one order's deliveries of this profile go out one at a
    // time, in the order of their events (see docs/ordering.md).
    public string Ordering { get; set; } = ProfileOrdering.None;
    // Several events of one order within the export delay go out as one delivery.
    public bool Coalesce { get; set; }
    // Values taken from the receiver's JSON answer onto the order.
    public List<ProfileCapture> Captures { get; set; } = [];
    // Mappings and routes are always read and written with their profile, so they live in it
    // as JSON rather than in tables of their own.
    public List<ExportMapping> Mappings { get; set; } = [];
    public List<ExportRoute> Routes { get; set; } = [];
    // Type "file": destination, file name, schedule and CSV format (secrets included, which the
    // API never shows).
    public FileExports.FileSettings? File { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}
