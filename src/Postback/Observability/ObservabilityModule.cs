using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Postback.Deliveries;
using Postback.Infrastructure;

namespace Postback.Observability;

/// Postback:Metrics. Metrics are on by default: /metrics serves them to Prometheus without a key
/// (bind the hub, or the proxy in front of it, so that only the monitoring can reach it), or
/// with the organization's API key as a Bearer token when RequireKey is set.
public sealed class MetricsOptions : ISettings
{
    public const string Section = "Postback:Metrics";

    public bool Enabled { get; set; } = true;
    public bool RequireKey { get; set; }

    public void Check(SettingChecks check) { }
}

/// Postback:Tracing. Spans are recorded when an OTLP endpoint is configured
/// (OTEL_EXPORTER_OTLP_ENDPOINT, the standard variable) or when Enabled is set (another
/// exporter registered in code, as the tests do).
public sealed class TracingOptions : ISettings
{
    public const string Section = "Postback:Tracing";

    public bool Enabled { get; set; }

    public void Check(SettingChecks check) { }
}

public static class ObservabilityModule
{
    public static WebApplicationBuilder AddPostbackObservability(this WebApplicationBuilder builder)
    {
        // Whether anything is recorded decides what is registered: read (and checked) now.
        var metrics = builder.Configuration.ReadSettings<MetricsOptions>(MetricsOptions.Section);
        var tracing = builder.Configuration.ReadSettings<TracingOptions>(TracingOptions.Section);
        var otlp = !string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        builder.Services.AddSingleton(metrics);

        builder.Services.AddHealthChecks()
            .AddCheck<DatabaseHealthCheck>("database")
            .AddCheck<MigrationsHealthCheck>("migrations", tags: ["ready"]);

        if (!metrics.Enabled && !tracing.Enabled && !otlp)
        {
            // Nothing listens: every instrument and span in the code is a no-op check.
            return builder;
        }
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("postback", serviceInstanceId: Environment.MachineName + ":" + Environment.ProcessId));
        if (metrics.Enabled)
        {
            builder.Services.AddSingleton<BacklogGauges>();
            telemetry.WithMetrics(m =>
            {
                m.AddMeter(PostbackMetrics.MeterName)
                    .AddAspNetCoreInstrumentation()
                    .AddHttpClientInstrumentation()
                    .AddRuntimeInstrumentation()
                    .AddPrometheusExporter();
                if (otlp)
                {
                    m.AddOtlpExporter();
                }
            });
        }
        if (tracing.Enabled || otlp)
        {
            telemetry.WithTracing(t =>
            {
                t.AddSource(PostbackTracing.SourceName)
                    .AddAspNetCoreInstrumentation(o =>
                    {
                        // Never the query string (the inbound plugin endpoint takes its secret
                        // there) nor, where a route template names the endpoint, the path with
                        // its ids (a customer id may be an e-mail address).
                        o.Filter = http => !http.Request.Path.StartsWithSegments("/metrics") && !http.Request.Path.StartsWithSegments("/health");
                        o.EnrichWithHttpResponse = (activity, _) =>
                        {
                            activity.SetTag("url.query", null);
                            if (activity.GetTagItem("http.route") is not null)
                            {
                                activity.SetTag("url.path", null);
                            }
                        };
                    })
                    .AddHttpClientInstrumentation(o =>
                    {
                        // A receiver's URL may carry personal data in its path or query: the span
                        // names the endpoint (scheme://host:port) only.
                        o.EnrichWithHttpRequestMessage = (activity, request) =>
                        {
                            if (request.RequestUri is { } uri)
                            {
                                activity.SetTag("url.full", Endpoints.Of(uri.ToString()));
                            }
                        };
                    });
                if (otlp)
                {
                    t.AddOtlpExporter();
                }
            });
        }
        return builder;
    }

    public static WebApplication MapPostbackObservability(this WebApplication app)
    {
        app.MapHealthChecks("/health");
        // Is the process up (for a restart policy); is it ready for traffic (for a load
        // balancer): the database answers and every migration is applied.
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false, ResponseWriter = WriteAsync })
            .WithTags("Health").WithSummary("The process is up (no dependency is checked).");
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { ResponseWriter = WriteAsync })
            .WithTags("Health").WithSummary("Ready for traffic: the database answers and every migration is applied.");

        var metrics = app.Services.GetRequiredService<MetricsOptions>();
        if (metrics.Enabled)
        {
            // The gauges register themselves when first created.
            app.Services.GetRequiredService<BacklogGauges>();
            // Once the meter provider listens (it starts with the host).
            app.Lifetime.ApplicationStarted.Register(PostbackMetrics.StartSeries);
            var endpoint = app.MapPrometheusScrapingEndpoint("/metrics");
            if (metrics.RequireKey)
            {
                endpoint.RequireAuthorization();
            }
        }
        return app;
    }

    private static Task WriteAsync(HttpContext http, HealthReport report)
    {
        http.Response.ContentType = "application/json";
        return JsonSerializer.SerializeAsync(http.Response.Body, new
        {
            status = report.Status.ToString(),
            checks = report.Entries.ToDictionary(e => e.Key, e => new { status = e.Value.Status.ToString(), description = e.Value.Description }),
        }, cancellationToken: http.RequestAborted);
    }
}
