using Postback.Admin;
using Postback.Catalog;
using Postback.Confirmations;
using Postback.Deliveries;
using Postback.ExportProfiles;
using Postback.Fields;
using Postback.FileExports;
using Postback.Infrastructure;
using Postback.Observability;
using Postback.Orders;
using Postback.Organizations;
using Postback.Outbound;
using Postback.Plugins;
using Postback.Retention;
using Postback.Storage;
using Postback.Storage.Stores;
using Postback.Team;

// The hub's table of contents: each feature registers its services (AddX) and maps its
// endpoints (MapX) in its own folder.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = HostSetup.ContentRoot(args) });
builder.Logging.AddSafeLogLevels();
builder.AddPostbackHost();
builder.Services.AddPostbackStorage(builder.Configuration);
builder.Services.AddOrganizations();
builder.Services.AddTeam();
builder.Services.AddPostbackAdmin(builder.Configuration);
builder.Services.AddPostbackForwardedHeaders(builder.Configuration);
builder.Services.AddPostbackOpenApi();
builder.AddPostbackObservability();
builder.Services.AddOrders();
builder.Services.AddOutbound();
builder.Services.AddDeliveries();
builder.Services.AddPlugins(builder.Configuration);
builder.Services.AddRetention(builder.Configuration);
builder.Services.AddConfirmations(builder.Configuration);
builder.Services.AddFileExports();

var app = builder.Build();
app.ValidateSettings();

await app.MigratePostbackStorageAsync();
await app.BootstrapOrganizationAsync();

// First: everything after it sees the client's address, not the proxy's (when proxies are named).
app.UsePostbackForwardedHeaders();
app.UsePostbackProblems();
app.UseStaticFiles();
app.UseAuthentication();
app.UseAuthorization();
app.UseAuditLog();

app.MapPostbackApiReference();
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
