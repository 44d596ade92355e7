namespace Postback.Infrastructure;

/// Field path → reasons, in the order they were found. Paths use the API's JSON names
/// ("mappings[2].exportName"), so a problem answer points at exactly what to fix.
public sealed class ValidationErrors
{
    private readonly Dictionary<string, List<string>> _errors = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];

    public bool Any => _errors.Count > 0;

    public int Count => _errors.Count;

    public void Add(string field, string reason)
    {
        if (!_errors.TryGetValue(field, out var list))
        {
            _errors[field] = list = [];
            _order.Add(field);
        }
        list.Add(reason);
    }

    public void AddRange(ValidationErrors other, string? prefix = null)
    {
        foreach (var field in other._order)
        {
            foreach (var reason in other._errors[field])
            {
                Add(prefix is null ? field : Join(prefix, field), reason);
            }
        }
    }

    public (string Field, string Reason) First => (_order[0], _errors[_order[0]][0]);

    public IDictionary<string, string[]> ToDictionary() =>
        _order.ToDictionary(f => f, f => _errors[f].ToArray(), StringComparer.Ordinal);

    public static string Join(string prefix, string field) =>
        field.Length == 0 ? prefix : field.StartsWith('[') ? prefix + field : prefix + "." + field;
}
