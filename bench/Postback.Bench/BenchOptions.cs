using System.Globalization;

namespace Postback.Bench;

public sealed class BenchOptions
{
    public const string Usage = """
        Postback delivery-engine benchmark (see bench/README.md; bench/run.sh builds and runs it).

          dotnet Postback.Bench.dll --hub-dll PATH [options]

          --hub-dll PATH            the hub's built Postback.dll (required)
          --storage S               sqlite | postgres | both                      (default: both)
          --postgres CS             PostgreSQL connection string for the hub       (default: $POSTBACK_BENCH_POSTGRES)
          --workload W              realistic | small: what each order holds and which
                                    profiles it fires (bench/README.md)          (default: realistic)
          --events N                events pushed in the throughput phase          (default: 20000)
          --cold N                  events pushed first, right after the hub starts
                                    (the cold figure; 0 = off)                     (default: 20000)
          --batch N                 events per POST /api/v1/events/batch (1-500)   (default: 250)
          --ingest-connections N    concurrent ingest connections                   (default: 4)
          --rate N                  events/s in the latency phase                   (default: 500)
          --latency-seconds N       length of the latency phase                     (default: 10)
          --raw-connections N       connections hammering the receiver directly     (default: 128)
          --warmup N                warm-up events per round (plus 500 single ones) (default: 5000)
          --warmup-rounds N         at most N rounds; stops early once a round costs the
                                    hub's tiered JIT under 0.1 s of CPU           (default: 6)
          --backlog N               also grow a backlog of N pending deliveries and
                                    sample the hub's memory every --backlog-step    (default: 0 = off)
          --backlog-step N          (default: 100000)
          --stuck-order-seconds N   ordering under a stuck order: the profile sends in order
                                    per order, and one order's first delivery is answered
                                    500 for N seconds (its second waits) while the latency
                                    phase runs; the latency reported is the other orders'
                                    (use --latency-seconds >= N)              (default: 0 = off)
          --sweep N                 also measure event latency while a retention sweep
                                    deletes about N rows (deliveries + attempts of N/2
                                    events, seeded first, then the hub restarted with
                                    Postback:Retention:FinishedDeliveries=00:00:01) (default: 0 = off)
          --sweep-seconds S         length of the latency phase during the sweep     (default: 60)
          --delivery-timeout S      give up waiting for a phase's deliveries after S seconds (default: 600)
          --stall-timeout S         ... or after S seconds without a new delivery  (default: 60)
          --hub-env KEY=VALUE       extra environment for the hub (repeatable), e.g.
                                    Postback__Delivery__ClaimBatch=1000
          --scale-out               also run the workload through 1 and then 2 hub processes on
                                    one PostgreSQL (fresh databases postback_scale_1 and _2,
                                    which bench/run.sh creates) and compare (docs/scaling.md)
          --work-dir DIR            where data directories and hub logs go       (default: a new temp dir)
          --keep                    keep the work directory (hub logs, SQLite file)
          --strict                  exit 3 when a target is missed
        """;

    public List<string> Storages { get; private set; } = ["sqlite", "postgres"];
    public string HubDll { get; private set; } = "";
    public string? Postgres { get; private set; } = Environment.GetEnvironmentVariable("POSTBACK_BENCH_POSTGRES");
    public Workload Workload { get; private set; } = Workload.Parse(Workload.Realistic);
    public int Events { get; private set; } = 20_000;
    public int Cold { get; private set; } = 20_000;
    public int Batch { get; private set; } = 250;
    public int IngestConnections { get; private set; } = 4;
    public int Rate { get; private set; } = 500;
    public int LatencySeconds { get; private set; } = 10;
    public int RawConnections { get; private set; } = 128;
    public int Warmup { get; private set; } = 5_000;
    public int WarmupRounds { get; private set; } = 6;
    public int Backlog { get; private set; }
    public int BacklogStep { get; private set; } = 100_000;
    public int Sweep { get; private set; }
    public int SweepSeconds { get; private set; } = 60;
    public int DeliveryTimeoutSeconds { get; private set; } = 600;
    public int StuckOrderSeconds { get; private set; }
    public int StallTimeoutSeconds { get; private set; } = 60;
    public Dictionary<string, string> HubEnvironment { get; } = new(StringComparer.Ordinal);
    public string? WorkDir { get; private set; }
    public bool Keep { get; private set; }
    public bool Strict { get; private set; }
    public bool ScaleOut { get; private set; }

    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions();
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{name} needs a value");
            int Int(int min, int max)
            {
                var text = Value();
                if (!int.TryParse(text.Replace("_", "", StringComparison.Ordinal).Replace(",", "", StringComparison.Ordinal),
                        NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < min || v > max)
                {
                    throw new ArgumentException($"{name} must be a whole number from {min} to {max}, not '{text}'");
                }
                return v;
            }
            switch (name)
            {
                case "--hub-dll": o.HubDll = Value(); break;
                case "--storage":
                    o.Storages = Value() switch
                    {
                        "sqlite" => ["sqlite"],
                        "postgres" or "postgresql" => ["postgres"],
                        "both" => ["sqlite", "postgres"],
                        var s => throw new ArgumentException($"--storage must be sqlite, postgres or both, not '{s}'"),
                    };
                    break;
                case "--postgres": o.Postgres = Value(); break;
                case "--workload": o.Workload = Workload.Parse(Value()); break;
                case "--events": o.Events = Int(100, 10_000_000); break;
                case "--cold": o.Cold = Int(0, 10_000_000); break;
                case "--batch": o.Batch = Int(1, 500); break;
                case "--ingest-connections": o.IngestConnections = Int(1, 256); break;
                case "--rate": o.Rate = Int(1, 20_000); break;
                case "--latency-seconds": o.LatencySeconds = Int(1, 600); break;
                case "--raw-connections": o.RawConnections = Int(1, 1024); break;
                case "--warmup": o.Warmup = Int(0, 500_000); break;
                case "--warmup-rounds": o.WarmupRounds = Int(1, 8); break;
                case "--backlog": o.Backlog = Int(0, 9_000_000); break;
                case "--backlog-step": o.BacklogStep = Int(1_000, 9_000_000); break;
                case "--sweep": o.Sweep = Int(0, 20_000_000); break;
                case "--sweep-seconds": o.SweepSeconds = Int(5, 3_600); break;
                case "--delivery-timeout": o.DeliveryTimeoutSeconds = Int(5, 86_400); break;
                case "--stuck-order-seconds": o.StuckOrderSeconds = Int(0, 3_600); break;
                case "--stall-timeout": o.StallTimeoutSeconds = Int(5, 3_600); break;
                case "--hub-env":
                    var kv = Value();
                    var eq = kv.IndexOf('=', StringComparison.Ordinal);
                    if (eq <= 0)
                    {
                        throw new ArgumentException($"--hub-env takes KEY=VALUE, not '{kv}'");
                    }
                    o.HubEnvironment[kv[..eq]] = kv[(eq + 1)..];
                    break;
                case "--work-dir": o.WorkDir = Value(); break;
                case "--keep": o.Keep = true; break;
                case "--strict": o.Strict = true; break;
                case "--scale-out": o.ScaleOut = true; break;
                case "-h" or "--help": throw new HelpRequested();
                default: throw new ArgumentException($"unknown option '{name}'");
            }
        }
        if (string.IsNullOrEmpty(o.HubDll))
        {
            throw new ArgumentException("--hub-dll is required (bench/run.sh passes it)");
        }
        if (!File.Exists(o.HubDll))
        {
            throw new ArgumentException($"--hub-dll: {o.HubDll} does not exist; build the hub with `dotnet build -c Release src/Postback`");
        }
        if ((o.Storages.Contains("postgres") || o.ScaleOut) && string.IsNullOrWhiteSpace(o.Postgres))
        {
            throw new ArgumentException("postgres needs --postgres or POSTBACK_BENCH_POSTGRES (bench/run.sh starts a private server)");
        }
        return o;
    }

    public sealed class HelpRequested : Exception;
}
