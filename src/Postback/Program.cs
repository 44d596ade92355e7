using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http.Json;
using Postback.Admin;
using Postback.Catalog;
using Postback.Observability;
using Postback.Confirmations;
using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.FileExports;
using Postback.Fields;
using Postback.Infrastructure;
using Postback.Orders;
using Postback.Organizations;
using Postback.Outbound;
using Postback.Plugins;
using Postback.Retention;
using Postback.Storage;
using Postback.Team;

var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = HostSetup.ContentRoot(args) });
builder.Logging.AddSafeLogLevels();

builder.Services.AddOptions<PostbackOptions>()
    .Bind(builder.Configuration.GetSection(PostbackOptions.Section))
    .PostConfigure(o =>
    {
        // Development talks to receivers on this machine; production must opt in.
        if (builder.Environment.IsDevelopment() && builder.Configuration["Postback:Outbound:AllowPrivateNetworks"] is null)
        {
            o.Outbound.AllowPrivateNetworks = true;
        }
    });
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddPostbackStorage(builder.Configuration);
builder.Services.AddMemoryCache();
builder.Services.AddProblemDetails();
builder.Services.AddExceptionHandler<BadRequestProblems>();
builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
builder.Services.Configure<JsonOptions>(o =>
{
    // A misspelt field ("staticValue") is an error, not silently nothing.
    o.SerializerOptions.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
    o.SerializerOptions.PropertyNameCaseInsensitive = false;
    o.SerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.Never;
});
builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = 1024 * 1024);

builder.Services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
    .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
builder.Services.AddAuthorization();
builder.Services.AddTeam();
builder.Services.AddPostbackAdmin(builder.Configuration);
builder.Services.AddPostbackForwardedHeaders(builder.Configuration);
builder.Services.AddPostbackOpenApi();
builder.AddPostbackObservability();
builder.Services.AddHealthChecks().AddCheck<DatabaseHealthCheck>("database");

builder.Services.AddScoped<Bootstrap>();
builder.Services.AddScoped<EventIngest>();
builder.Services.AddSingleton<GroupCommit>();
builder.Services.AddSingleton<DeliverySignal>();
OutboundSender.Configure(builder.Services);
// Shared with the admin pages, which say why a receiver's deliveries are held.
builder.Services.AddSingleton(sp =>
{
    var delivery = sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<PostbackOptions>>().Value.Delivery;
    return new EndpointHealth(delivery.FailureThreshold, delivery.MaxInFlightPerEndpoint);
});
builder.Services.AddHostedService<DeliveryWorker>();
builder.Services.AddHostedService<PluginMaintenance>();
builder.Services.AddRetention(builder.Configuration);
builder.Services.AddSingleton<RefusedPostbacks>();
builder.Services.AddHostedService<RefusedPostbackLog>();
builder.Services.AddConfirmations(builder.Configuration);
builder.Services.AddSingleton<FileRunSignal>();
builder.Services.AddSingleton<FileRunWorker>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<FileRunWorker>());
builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));

var app = builder.Build();

await using (var scope = app.Services.CreateAsyncScope())
{
    await StorageSetup.MigrateAsync(scope.ServiceProvider.GetRequiredService<PostbackDb>());
    await scope.ServiceProvider.GetRequiredService<Bootstrap>().RunAsync();
}

// First: everything after it sees the client's address, not the proxy's (when proxies are named).
app.UsePostbackForwardedHeaders();
app.UseExceptionHandler();
app.UseStatusCodePages(BadRequestProblems.WriteStatusProblemAsync);
app.UseStaticFiles();
app.UseAuthentication();
app.UseAuthorization();
app.UseAuditLog();

app.MapPostbackApiReference();
app.MapHealthChecks("/health");
app.MapPostbackObservability();

// Every API endpoint: GET for any role, anything else for admin and operator (Team/Roles.cs).
var api = app.MapGroup("/api/v1").RequireAuthorization(RolePolicies.ReadOrWrite);
api.MapCampaigns();
api.MapEvents();
api.MapOrders();
api.MapFields();
api.MapExportProfiles();
api.MapFileRuns();
api.MapDeliveries();
api.MapPluginInstances();
api.MapSkus();
app.MapPluginWebhooks();
api.MapConfirmations();
api.MapTeam();
api.MapRetention();
app.MapPostbackAdmin();

app.Run();

public partial class Program;
