using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.Plugins;

public sealed class PluginInstance
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    public required string Name { get; set; }
    // "konnektive" or "checkoutchamp" (PluginKinds).
    public required string Kind { get; set; }
    // Kept as given, not hashed: the operator must be able to see it again to paste it into the
    // CRM's field mapping. It is never written to a log; inbound payloads are stored with it masked.
    public required string Secret { get; set; }
    // The campaign whose products resolve the SKUs of this instance's postbacks (campaignId).
    public string? CampaignId { get; set; }
    public bool ImportUnknownSkus { get; set; }
    public bool Enabled { get; set; } = true;
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

/// One postback received for a known plugin instance, accepted or refused.
public sealed class InboundLogEntry
{
    public long Id { get; set; }
    public long OrganizationId { get; set; }
    public long PluginInstanceId { get; set; }
    public DateTimeOffset ReceivedAt { get; set; }
    public required string Method { get; set; }
    // accepted, duplicate, refused (secret), invalid (bad data), disabled, too_large.
    public required string Outcome { get; set; }
    public int StatusCode { get; set; }
    public string? Reason { get; set; }
    public long? OrderId { get; set; }
    public string? EventId { get; set; }
    public string? CustomerType { get; set; }
    // The fields as received, form-encoded, secrets masked, cut at PluginWebhook.MaxLoggedPayload.
    public required string Payload { get; set; }
}

internal sealed class PluginInstanceConfiguration : IEntityTypeConfiguration<PluginInstance>
{
    public void Configure(EntityTypeBuilder<PluginInstance> e)
    {
        e.ToTable("plugin_instances");
        e.Property(x => x.Name).HasMaxLength(200);
        e.Property(x => x.Kind).HasMaxLength(32);
        e.Property(x => x.Secret).HasMaxLength(200);
        e.Property(x => x.CampaignId).HasMaxLength(64);
        e.HasIndex(x => x.OrganizationId);
        e.HasOne<Organization>().WithMany().HasForeignKey(x => x.OrganizationId).OnDelete(DeleteBehavior.Cascade);
    }
}

internal sealed class InboundLogEntryConfiguration : IEntityTypeConfiguration<InboundLogEntry>
{
    public void Configure(EntityTypeBuilder<InboundLogEntry> e)
    {
        e.ToTable("inbound_log");
        e.Property(x => x.Method).HasMaxLength(16);
        e.Property(x => x.Outcome).HasMaxLength(16);
        e.Property(x => x.Reason).HasMaxLength(1000);
        e.Property(x => x.EventId).HasMaxLength(100);
        e.Property(x => x.CustomerType).HasMaxLength(32);
        e.HasIndex(x => new { x.OrganizationId, x.Id });
        e.HasIndex(x => new { x.PluginInstanceId, x.Id });
        // Retention (PluginMaintenance) deletes by age.
        e.HasIndex(x => x.ReceivedAt);
        e.HasOne<PluginInstance>().WithMany().HasForeignKey(x => x.PluginInstanceId).OnDelete(DeleteBehavior.Cascade);
    }
}

// This feature's tables on the shared context, as extension properties (`db.PluginInstances`): PostbackDb
// names no feature, so Storage stays below the features (docs/architecture.md).
public static class PluginTables
{
    extension(PostbackDb db)
    {
        public DbSet<PluginInstance> PluginInstances => db.Set<PluginInstance>();
        public DbSet<InboundLogEntry> InboundLog => db.Set<InboundLogEntry>();
    }
}
