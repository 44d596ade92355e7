using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using Postback.Infrastructure;
using Scalar.AspNetCore;

namespace Postback.Observability;

/// The OpenAPI document at /openapi/v1.json and a browsable reference over it at /api/docs.
/// The document declares the Bearer scheme (an organization's API key) and applies it to every
/// operation that needs it; the inbound plugin endpoint, the health checks and /metrics do not.
public static class ApiReference
{
    public const string SchemeName = "Bearer";

    public static IServiceCollection AddPostbackOpenApi(this IServiceCollection services)
    {
        services.AddOpenApi(o =>
        {
            o.AddDocumentTransformer((document, _, _) =>
            {
                document.Info.Title = "Postback";
                document.Info.Description =
                    "Order webhook hub: store order events from a CRM or storefront, deliver them to export profiles, confirm orders. "
                    + "Every /api/v1 operation takes an organization's API key as a Bearer token; errors are application/problem+json naming the field.";
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes[SchemeName] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    Description = "An organization's API key (pb_…): Authorization: Bearer pb_…",
                };
                return Task.CompletedTask;
            });
            o.AddOperationTransformer(async (operation, context, ct) =>
            {
                var metadata = context.Description.ActionDescriptor.EndpointMetadata;
                var anonymous = metadata.OfType<IAllowAnonymous>().Any();
                if (!anonymous && metadata.OfType<IAuthorizeData>().Any())
                {
                    operation.Security ??= [];
                    operation.Security.Add(new OpenApiSecurityRequirement
                    {
                        [new OpenApiSecuritySchemeReference(SchemeName, context.Document)] = [],
                    });
                }
                if (metadata.OfType<DocumentedBodyAttribute>().FirstOrDefault() is { } body && context.Description.HttpMethod != HttpMethods.Get)
                {
                    var schema = await context.GetOrCreateSchemaAsync(body.Type, null, ct);
                    operation.RequestBody = new OpenApiRequestBody
                    {
                        Required = body.Required,
                        Content = body.ContentTypes.ToDictionary(t => t, _ => new OpenApiMediaType { Schema = schema }),
                    };
                }
            });
            o.AddSchemaTransformer(ApiExamples.ApplyAsync);
        });
        return services;
    }

    public static WebApplication MapPostbackApiReference(this WebApplication app)
    {
        app.MapOpenApi("/openapi/{documentName}.json");
        // Scalar's page and its script are served by the hub itself (no CDN): a hub on a closed
        // network shows its reference too.
        app.MapScalarApiReference("/api/docs", o =>
        {
            o.WithTitle("Postback API")
                .WithOpenApiRoutePattern("/openapi/{documentName}.json")
                .AddPreferredSecuritySchemes(SchemeName)
                .AddHttpAuthentication(SchemeName, _ => { });
        });
        return app;
    }
}
