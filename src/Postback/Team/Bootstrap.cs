using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Postback.Infrastructure;
using Postback.Organizations;
using Postback.Storage;

namespace Postback.Team;

/// On first start: the first organization and its API key, an admin key named "bootstrap". The key is either the configured
/// Postback:BootstrapApiKey or, if none is configured, a generated one written to a file only
/// the hub's user can read (a key is a secret and never goes to the log).
public sealed class Bootstrap(
    PostbackDb db, IOptions<PostbackOptions> options, IConfiguration configuration, UserAccounts accounts, TimeProvider time, ILogger<Bootstrap> log)
{
    public async Task RunAsync(CancellationToken ct = default)
    {
        // Its length is checked with the other settings, before the hub starts (PostbackOptions).
        var configuredKey = options.Value.BootstrapApiKey?.Trim();

        var organization = await db.Organizations.OrderBy(o => o.Id).FirstOrDefaultAsync(ct);
        if (organization is null)
        {
            organization = new Organization { Name = "Default organization", CompanyId = 1, CreatedAt = time.GetUtcNow() };
            db.Organizations.Add(organization);
            await db.SaveChangesInTurnAsync(ct);
            log.LogInformation("Created the first organization (id {OrganizationId}, companyId {CompanyId})", organization.Id, organization.CompanyId);

            if (string.IsNullOrEmpty(configuredKey))
            {
                var key = ApiKeys.Generate();
                await AddKeyAsync(organization.Id, key, "bootstrap", ct);
                var path = Path.GetFullPath(Path.Combine(options.Value.Storage.DataDirectory, "initial-api-key"));
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                await File.WriteAllTextAsync(path, key + Environment.NewLine, ct);
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                }
                log.LogWarning("No Postback:BootstrapApiKey was configured; an API key for the first organization was written to {Path}", path);
            }
        }

        if (!string.IsNullOrEmpty(configuredKey))
        {
            var hash = ApiKeys.Hash(configuredKey);
            if (!await db.ApiKeys.AnyAsync(k => k.KeyHash == hash, ct))
            {
                await AddKeyAsync(organization.Id, configuredKey, "bootstrap", ct);
                log.LogInformation("Added the configured bootstrap API key to organization {OrganizationId}", organization.Id);
            }
        }

        await accounts.EnsureBootstrapAdminAsync(
            organization.Id, configuration["Postback:BootstrapAdmin:Email"], configuration["Postback:BootstrapAdmin:Password"], log, ct);
        if (!string.IsNullOrEmpty(configuration["Postback:Admin:Password"]))
        {
            log.LogWarning("Postback:Admin:Password is deprecated and will be removed in the next release: create operator accounts "
                + "(Postback:BootstrapAdmin:Email and Password make the first admin) and log in with e-mail and password");
        }
    }

    private async Task AddKeyAsync(long organizationId, string key, string name, CancellationToken ct)
    {
        db.ApiKeys.Add(new ApiKey
        {
            OrganizationId = organizationId,
            Name = name,
            KeyHash = ApiKeys.Hash(key),
            Prefix = ApiKeys.DisplayPrefix(key),
            Role = Team.Roles.Admin,
            CreatedAt = time.GetUtcNow(),
        });
        await db.SaveChangesInTurnAsync(ct);
    }
}
