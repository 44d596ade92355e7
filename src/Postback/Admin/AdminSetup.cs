using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Postback.Infrastructure;
using Postback.Organizations;
using Postback.Storage;
using Postback.Team;

namespace Postback.Admin;

/// `Postback:Admin`: the operator password (optional; API keys always work) and the session length.
public sealed class AdminOptions : Infrastructure.ISettings
{
    public const string Section = "Postback:Admin";

    // When set, this password logs in as the first organization (the one the bootstrap made).
    public string? Password { get; set; }
    public int SessionHours { get; set; } = 8;

    public void Check(Infrastructure.SettingChecks check) => check.Range(nameof(SessionHours), SessionHours, 1, 24 * 366);
}

/// The admin UI under /admin: Razor Pages (server-rendered forms), behind a cookie login of
/// its own. The API keeps its Bearer scheme as the default, so a session cookie never
/// authenticates an /api/v1 call.
public static class AdminSetup
{
    public const string Scheme = "AdminCookie";
    public const string Policy = "Admin";

    public static IServiceCollection AddPostbackAdmin(this IServiceCollection services, IConfiguration configuration)
    {
        // The cookie's lifetime is set here, so the section is read (and checked) now.
        var admin = configuration.ReadSettings<AdminOptions>(AdminOptions.Section);
        services.AddSettings<AdminOptions>(configuration, AdminOptions.Section);
        var storage = configuration.ReadSettings<StorageOptions>(PostbackOptions.Section + ":Storage");
        // The session and antiforgery cookies are encrypted with these keys: kept in the data
        // directory, a restart does not log every operator out. Hub processes sharing a data
        // directory share sessions; others need sticky sessions.
        // The keys are not encrypted at rest (no XML encryptor; the hub logs a warning saying
        // so): the folder is the hub user's alone, like initial-api-key.
        var keys = Path.Combine(storage.DataDirectory, "keys");
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(keys);
        }
        else
        {
            Directory.CreateDirectory(keys, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        services.AddDataProtection()
            .SetApplicationName("Postback")
            .PersistKeysToFileSystem(new DirectoryInfo(keys));
        services.AddSingleton<LoginThrottle>();
        services.AddAuthentication()
            .AddCookie(Scheme, o =>
            {
                o.Cookie.Name = "postback_admin";
                o.Cookie.Path = "/admin";
                o.Cookie.HttpOnly = true;
                o.Cookie.SameSite = SameSiteMode.Strict;
                // Secure whenever the hub is reached over HTTPS (behind a TLS-terminating proxy,
                // forward the scheme); plain http only for loopback and development.
                o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                o.LoginPath = "/admin/login";
                o.LogoutPath = "/admin/logout";
                o.AccessDeniedPath = "/admin/login";
                o.ReturnUrlParameter = "returnUrl";
                o.SlidingExpiration = true;
                o.ExpireTimeSpan = TimeSpan.FromHours(admin.SessionHours);
                o.Events.OnValidatePrincipal = ValidateSessionAsync;
            });
        services.AddAuthorizationBuilder()
            .AddPolicy(Policy, p => p.AddAuthenticationSchemes(Scheme).RequireAuthenticatedUser());
        services.AddRazorPages(o =>
        {
            o.RootDirectory = "/Admin/Pages";
            o.Conventions.AuthorizeFolder("/", Policy);
            o.Conventions.AllowAnonymousToPage("/Login");
        }).AddMvcOptions(o =>
        {
            o.Filters.Add<RolePageFilter>();
            o.Filters.Add<DisplayTimeZoneFilter>();
        });
        services.AddAntiforgery(o =>
        {
            o.Cookie.Name = "postback_admin_af";
            o.Cookie.Path = "/admin";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
        });
        services.AddScoped<AdminLogin>();
        return services;
    }

    // A session lives while its server-side record does (AdminSessions: log out and revocation
    // end it for good); one made with an API key also ends when that key is revoked, a user's
    // when the account is disabled or its role or password changes (SessionVersion).
    private static async Task ValidateSessionAsync(CookieValidatePrincipalContext context)
    {
        var services = context.HttpContext.RequestServices;
        var db = services.GetRequiredService<PostbackDb>();
        var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
        var ct = context.HttpContext.RequestAborted;
        var sessionId = context.Principal?.FindFirst(AdminSessions.IdClaim)?.Value;
        var valid = sessionId is not null && await AdminSessions.IsLiveAsync(db, sessionId, now, ct);
        if (valid && context.Principal?.FindFirst(AdminLogin.KeyHashClaim)?.Value is { } hash)
        {
            valid = await db.ApiKeys.AsNoTracking().AnyAsync(k => k.KeyHash == hash && k.RevokedAt == null, ct);
        }
        if (valid && context.Principal?.FindFirst(Team.TeamClaims.UserId)?.Value is { } userId)
        {
            var id = long.Parse(userId, System.Globalization.CultureInfo.InvariantCulture);
            var version = int.Parse(context.Principal.FindFirst(AdminLogin.SessionVersionClaim)?.Value ?? "-1", System.Globalization.CultureInfo.InvariantCulture);
            valid = await db.Users.AsNoTracking().AnyAsync(u => u.Id == id && u.DisabledAt == null && u.SessionVersion == version, ct);
        }
        if (valid)
        {
            var hours = services.GetRequiredService<Microsoft.Extensions.Options.IOptions<AdminOptions>>().Value.SessionHours;
            await AdminSessions.ExtendAsync(db, sessionId!, now, TimeSpan.FromHours(hours), ct);
        }
        if (!valid)
        {
            context.RejectPrincipal();
            await context.HttpContext.SignOutAsync(Scheme);
        }
    }

    public static WebApplication MapPostbackAdmin(this WebApplication app)
    {
        // The pages load only their own CSS and JS, post only to themselves, and are never framed.
        app.Use((context, next) =>
        {
            if (context.Request.Path.StartsWithSegments("/admin"))
            {
                var headers = context.Response.Headers;
                headers.ContentSecurityPolicy = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";
                headers.XContentTypeOptions = "nosniff";
                headers["Referrer-Policy"] = "same-origin";
            }
            return next(context);
        });
        app.MapRazorPages();
        return app;
    }
}
