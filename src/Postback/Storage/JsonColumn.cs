using System.Text.Json;
using Microsoft.EntityFrameworkCore.ChangeTracking;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Postback.Storage;

/// A value kept as JSON text in one column (a profile's mappings and routes, a list of
/// addresses): always read and written with its row, so it needs no table of its own.
public static class JsonColumn
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static ValueConverter<T, string> Converter<T>() where T : new() => new(
        v => JsonSerializer.Serialize(v, Json),
        s => JsonSerializer.Deserialize<T>(s, Json) ?? new T());

    public static ValueConverter<T?, string?> NullableConverter<T>() where T : class => new(
        v => v == null ? null : JsonSerializer.Serialize(v, Json),
        s => s == null ? null : JsonSerializer.Deserialize<T>(s, Json));

    public static ValueComparer<T> Comparer<T>() => new(
        (a, b) => JsonSerializer.Serialize(a, Json) == JsonSerializer.Serialize(b, Json),
        v => JsonSerializer.Serialize(v, Json).GetHashCode(StringComparison.Ordinal),
        v => JsonSerializer.Deserialize<T>(JsonSerializer.Serialize(v, Json), Json)!);
}
