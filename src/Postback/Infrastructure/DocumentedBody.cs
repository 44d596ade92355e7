namespace Postback.Infrastructure;

/// Endpoint metadata: the request body the OpenAPI document shows, for a handler that reads its
/// input itself (a JsonElement parameter, or a query string, form or JSON alike, shows as an
/// untyped body or none).
public sealed class DocumentedBodyAttribute(Type type, bool Required = true, params string[] contentTypes) : Attribute
{
    public Type Type { get; } = type;
    public bool Required { get; } = Required;
    public IReadOnlyList<string> ContentTypes { get; } = contentTypes.Length == 0 ? ["application/json"] : contentTypes;
}
