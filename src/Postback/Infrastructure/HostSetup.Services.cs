using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.Json;

namespace Postback.Infrastructure;

public static partial class HostSetup
{
    /// What every part of the hub shares: the "Postback" options, the clock, problem+json for
    /// every error, strict JSON and the request size limit.
    public static WebApplicationBuilder AddPostbackHost(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddSettings<PostbackOptions>(builder.Configuration, PostbackOptions.Section)
            .PostConfigure(o =>
            {
                // Development talks to receivers on this machine; production must opt in.
                if (builder.Environment.IsDevelopment() && builder.Configuration["Postback:Outbound:AllowPrivateNetworks"] is null)
                {
                    o.Outbound.AllowPrivateNetworks = true;
                }
            });
        services.AddSingleton(TimeProvider.System);
        services.AddMemoryCache();
        services.AddProblemDetails();
        services.AddExceptionHandler<BadRequestProblems>();
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.Configure<JsonOptions>(o =>
        {
            // A misspelt field ("staticValue") is an error, not silently nothing.
            o.SerializerOptions.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
            o.SerializerOptions.PropertyNameCaseInsensitive = false;
            o.SerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.Never;
        });
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = 1024 * 1024);
        services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
        return builder;
    }

    /// Every error as application/problem+json: exceptions, and bare status codes (404, 405, ...).
    public static WebApplication UsePostbackProblems(this WebApplication app)
    {
        app.UseExceptionHandler();
        app.UseStatusCodePages(BadRequestProblems.WriteStatusProblemAsync);
        return app;
    }
}
