using ArchUnitNET.Domain;
using ArchUnitNET.Loader;

namespace Postback.Tests.Architecture;

/// The namespaces of the hub form layers (docs/architecture.md, "Namespaces and layers"): a
/// namespace depends only on its own layer and the ones below, and never in a circle. The
/// graph is read from the compiled hub (every type a type's IL, signatures and attributes name),
/// so a new dependency fails here with the circle it closes, before it is reviewed.
public sealed class NamespaceGraphTests
{
    // Bottom to top. Postback.Admin.Pages.* counts as Postback.Admin: a feature is its folder.
    // Storage is two: its core (the EF context, the write gate, the migrations) below the
    // features, and the stores that implement the features' contracts with their types
    // (Postback.Storage.Stores, .Sqlite, .Postgres: "Storage.Stores") above them.
    private static readonly string[][] Layers =
    [
        ["Infrastructure"],
        ["Outbound"],
        ["Storage"],
        ["Organizations", "Fields", "Orders", "Catalog", "ExportProfiles", "FileExports", "Deliveries", "Notifications",
            "Confirmations", "Plugins", "Team", "Retention"],
        ["Storage.Stores"],
        ["Observability", "Admin"],
    ];

    // Dependencies that break the layering today, each to be removed (and then struck from
    // this list: the test fails when one listed here is gone, so the list only shrinks).
    // - Orders is both the order model everyone reads and the ingest and order API on top of
    //   the other features; a campaign's and a profile's "is it in use" checks read the tables
    //   of the features that use them; a profile holds its file settings and cancels its
    //   pending deliveries.
    private static readonly HashSet<(string From, string To)> Known =
    [
        ("Orders", "Catalog"), ("Orders", "Confirmations"), ("Orders", "Deliveries"), ("Orders", "ExportProfiles"),
        ("Catalog", "ExportProfiles"), ("Catalog", "Plugins"),
        ("ExportProfiles", "Deliveries"), ("ExportProfiles", "FileExports"),
    ];

    private static readonly Lazy<Dictionary<(string From, string To), List<string>>> Graph = new(Read);

    [Fact]
    public void No_namespace_depends_on_a_layer_above_its_own()
    {
        var layer = Layers.SelectMany((names, i) => names.Select(n => (n, i))).ToDictionary(x => x.n, x => x.i);
        var unknown = Graph.Value.Keys.SelectMany(e => new[] { e.From, e.To }).Distinct().Where(n => !layer.ContainsKey(n)).ToList();
        Assert.True(unknown.Count == 0,
            $"namespaces in no layer: {string.Join(", ", unknown)}; give each a layer in {nameof(Layers)} and docs/architecture.md");

        var upward = Graph.Value.Where(e => layer[e.Key.From] < layer[e.Key.To] && !Known.Contains(e.Key))
            .Select(e => $"Postback.{e.Key.From} -> Postback.{e.Key.To} ({Describe(e.Value)})").ToList();
        Assert.True(upward.Count == 0, "these depend on a layer above their own:\n" + string.Join("\n", upward));
    }

    [Fact]
    public void The_namespaces_depend_on_each_other_in_no_circle()
    {
        var edges = Graph.Value.Keys.Where(e => !Known.Contains(e)).ToList();
        var cycles = Cycles(edges);
        Assert.True(cycles.Count == 0, "namespaces that depend on each other in a circle:\n" + string.Join("\n", cycles.Select(cycle =>
            string.Join(" -> ", cycle.Append(cycle[0]).Select(n => "Postback." + n)) + "\n" + string.Join("\n",
                cycle.Select((n, i) => $"  {n} -> {cycle[(i + 1) % cycle.Count]}: {Describe(Graph.Value[(n, cycle[(i + 1) % cycle.Count])])}")))));
    }

    [Fact]
    public void Every_dependency_listed_as_known_still_exists()
    {
        var gone = Known.Where(e => !Graph.Value.ContainsKey(e)).Select(e => $"Postback.{e.From} -> Postback.{e.To}").ToList();
        Assert.True(gone.Count == 0, $"no longer there (strike them from {nameof(Known)} and docs/architecture.md): {string.Join(", ", gone)}");
    }

    [Fact]
    public void The_kernel_and_the_outbound_client_depend_on_no_feature()
    {
        Assert.DoesNotContain(Graph.Value.Keys, e => e.From == "Infrastructure");
        Assert.All(Graph.Value.Keys.Where(e => e.From == "Outbound"), e => Assert.Equal("Infrastructure", e.To));
    }

    [Fact]
    public void The_storage_core_depends_on_no_feature()
    {
        // The stores, which name the features' types, are Storage.Stores, above the features; the
        // context, which every feature uses, names none of them (its sets are extension
        // properties beside each feature's entities, the audit log a hook Team registers).
        Assert.All(Graph.Value.Keys.Where(e => e.From == "Storage"), e => Assert.Contains(e.To, (string[])["Infrastructure", "Outbound"]));
        Assert.Contains(("Storage.Stores", "Deliveries"), Graph.Value.Keys);
        Assert.Contains(("Deliveries", "Storage"), Graph.Value.Keys);
    }

    [Fact]
    public void The_graph_is_read_from_the_hub()
    {
        // A loader that saw nothing would pass every rule above.
        Assert.Contains(("Deliveries", "Outbound"), Graph.Value.Keys);
        Assert.Contains(("Admin", "Deliveries"), Graph.Value.Keys);
        Assert.True(Graph.Value.Count > 50, $"only {Graph.Value.Count} dependencies between namespaces were found");
    }

    private static string Describe(List<string> examples) =>
        string.Join("; ", examples.Take(3)) + (examples.Count > 3 ? $"; and {examples.Count - 3} more" : "");

    // Postback.X.Y... -> X, but Postback.Storage.{Stores,Sqlite,Postgres}... -> Storage.Stores;
    // types outside Postback (the runtime, generated Razor views) -> null.
    private static string? Slice(IType type)
    {
        var parts = type.Namespace.FullName.Split('.');
        if (parts.Length < 2 || parts[0] != "Postback" || parts[1] == "Tests")
        {
            return null;
        }
        return parts is [_, "Storage", "Stores" or "Sqlite" or "Postgres", ..] ? "Storage.Stores" : parts[1];
    }

    private static Dictionary<(string From, string To), List<string>> Read()
    {
        var hub = new ArchLoader().LoadAssemblies(typeof(Program).Assembly).Build();
        var edges = new Dictionary<(string From, string To), List<string>>();
        foreach (var type in hub.Types)
        {
            if (Slice(type) is not { } from)
            {
                continue;
            }
            foreach (var dependency in type.Dependencies)
            {
                if (Slice(dependency.Target) is { } to && to != from)
                {
                    if (!edges.TryGetValue((from, to), out var examples))
                    {
                        edges[(from, to)] = examples = [];
                    }
                    var example = $"{type.Name} uses {dependency.Target.Name}";
                    if (!examples.Contains(example))
                    {
                        examples.Add(example);
                    }
                }
            }
        }
        return edges;
    }

    // Every strongly connected component of more than one namespace, as one circle through it
    // (Tarjan's algorithm, then a path back to the start inside the component).
    private static List<List<string>> Cycles(IReadOnlyCollection<(string From, string To)> edges)
    {
        var next = edges.GroupBy(e => e.From).ToDictionary(g => g.Key, g => g.Select(e => e.To).OrderBy(t => t, StringComparer.Ordinal).ToList());
        var nodes = edges.SelectMany(e => new[] { e.From, e.To }).Distinct().OrderBy(n => n, StringComparer.Ordinal).ToList();
        var index = new Dictionary<string, int>();
        var low = new Dictionary<string, int>();
        var stack = new Stack<string>();
        var components = new List<HashSet<string>>();

        void Visit(string node)
        {
            index[node] = low[node] = index.Count;
            stack.Push(node);
            foreach (var to in next.GetValueOrDefault(node) ?? [])
            {
                if (!index.ContainsKey(to))
                {
                    Visit(to);
                    low[node] = Math.Min(low[node], low[to]);
                }
                else if (stack.Contains(to))
                {
                    low[node] = Math.Min(low[node], index[to]);
                }
            }
            if (low[node] == index[node])
            {
                var component = new HashSet<string>();
                string member;
                do
                {
                    member = stack.Pop();
                    component.Add(member);
                }
                while (member != node);
                if (component.Count > 1)
                {
                    components.Add(component);
                }
            }
        }

        foreach (var node in nodes.Where(n => !index.ContainsKey(n)))
        {
            Visit(node);
        }
        return components.Select(c => CircleThrough(c, next)).ToList();
    }

    private static List<string> CircleThrough(HashSet<string> component, Dictionary<string, List<string>> next)
    {
        // Breadth-first from the first member back to itself, inside the component.
        var start = component.Min(StringComparer.Ordinal)!;
        var parent = new Dictionary<string, string>();
        var queue = new Queue<string>([start]);
        while (queue.Count > 0)
        {
            var node = queue.Dequeue();
            foreach (var to in (next.GetValueOrDefault(node) ?? []).Where(component.Contains))
            {
                if (to == start)
                {
                    var circle = new List<string> { node };
                    while (circle[^1] != start)
                    {
                        circle.Add(parent[circle[^1]]);
                    }
                    circle.Reverse();
                    return circle;
                }
                if (parent.TryAdd(to, node))
                {
                    queue.Enqueue(to);
                }
            }
        }
        return [.. component];
    }
}
