using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Postback.Testing;

namespace Postback.Tests.Support;

/// The hub as a real, separate OS process (Postback.Testing's HubLauncher, which the benchmark
/// uses too): a test can SIGKILL it (a crash) or SIGTERM it (a graceful stop) and start another
/// one on the same database. Everything it writes to stdout and stderr is kept for diagnostics.
public sealed partial class HubProcess : IAsyncDisposable
{
    public const string ApiKey = HubFactory.ApiKey;
    private const int MaxOutputLines = 20_000;

    private readonly HubLauncher _hub;
    private readonly string _workingDirectory;
    private readonly OutputLines _output;

    private HubProcess(HubLauncher hub, string workingDirectory, string name, OutputLines output)
    {
        _hub = hub;
        _workingDirectory = workingDirectory;
        _output = output;
        Name = name;
    }

    public Uri BaseAddress => _hub.BaseAddress;

    /// A label for messages ("hub-1"), not used by the hub itself.
    public string Name { get; }

    public int Pid => _hub.Pid;

    public bool HasExited => _hub.HasExited;

    public int? ExitCode => _hub.ExitCode;

    /// Everything the process wrote so far, stdout and stderr interleaved in arrival order.
    public string Output => _output.Text;

    /// Log lines at error or critical level (the console logger's "fail:" and "crit:"), plus
    /// unhandled exceptions written by the runtime.
    public IReadOnlyList<string> ErrorLines => _output.Lines.Where(IsErrorLine).ToList();

    private static bool IsErrorLine(string line) =>
        (ErrorLine().IsMatch(line) || line.Contains("Unhandled exception", StringComparison.Ordinal)) && !IsKnownBenign(line);

    // EF Core reads the migrations history before it knows the table exists, and logs that read
    // failing as an error on the first start on an empty PostgreSQL database (dotnet/efcore#37328).
    private static bool IsKnownBenign(string line) =>
        line.Contains("Failed executing DbCommand", StringComparison.Ordinal)
        && line.Contains("FROM \"__EFMigrationsHistory\"", StringComparison.Ordinal);

    // "<elapsed>s [out] 12:00:00.000 fail: Category[0] message" (simple console formatter, one line).
    [GeneratedRegex(@"^\S+ \[(out|err)\] (\d\d:\d\d:\d\d\.\d{3} )?(fail|crit): ")]
    private static partial Regex ErrorLine();

    /// The process's lines, stamped with the time since it started; the oldest dropped past
    /// MaxOutputLines.
    private sealed class OutputLines
    {
        private readonly Queue<string> _lines = new();
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private int _dropped;

        public void Append(string stream, string line)
        {
            var stamped = $"{_clock.Elapsed.TotalSeconds:0.000}s [{stream}] {line}";
            lock (_lines)
            {
                _lines.Enqueue(stamped);
                while (_lines.Count > MaxOutputLines)
                {
                    _lines.Dequeue();
                    _dropped++;
                }
            }
        }

        public List<string> Lines
        {
            get
            {
                lock (_lines)
                {
                    return [.. _lines];
                }
            }
        }

        public string Text
        {
            get
            {
                lock (_lines)
                {
                    var text = string.Join('\n', _lines);
                    return _dropped > 0 ? $"[{_dropped} earlier lines dropped]\n{text}" : text;
                }
            }
        }
    }

    /// The configuration every test hub process gets; <paramref name="settings"/> adds to or
    /// replaces it (configuration keys with ':', turned into environment variables by the launcher).
    public static Dictionary<string, string?> BaseSettings(string dataDirectory) => HubSettings.With(HubSettings.Base(dataDirectory), new Dictionary<string, string?>
    {
        ["Postback:Delivery:Enabled"] = "true",
        ["Postback:Delivery:LeaseSeconds"] = "3",
        ["Postback:Delivery:PollMilliseconds"] = "100",
        ["Postback:Delivery:FirstRetrySeconds"] = "0.2",
        ["Logging:LogLevel:Default"] = "Information",
        ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
        ["Logging:LogLevel:Microsoft.EntityFrameworkCore.Database.Command"] = "Warning",
        ["Logging:LogLevel:System.Net.Http.HttpClient"] = "Warning",
        ["Logging:Console:FormatterName"] = "simple",
        ["Logging:Console:FormatterOptions:SingleLine"] = "true",
        ["Logging:Console:FormatterOptions:TimestampFormat"] = "HH:mm:ss.fff ",
    });

    /// A hub process on a SQLite file in <paramref name="dataDirectory"/> (created on first start,
    /// shared by every process started on the same directory).
    public static Task<HubProcess> StartSqliteAsync(string dataDirectory, string name, IReadOnlyDictionary<string, string?>? settings = null) =>
        StartAsync(HubSettings.With(BaseSettings(dataDirectory), HubSettings.Storage(postgres: false, null, dataDirectory)), settings, name);

    /// A hub process on a PostgreSQL database (from <see cref="PostgresServer.CreateDatabaseAsync"/>).
    public static Task<HubProcess> StartPostgresAsync(string connectionString, string dataDirectory, string name, IReadOnlyDictionary<string, string?>? settings = null) =>
        StartAsync(HubSettings.With(BaseSettings(dataDirectory), HubSettings.Storage(postgres: true, connectionString)), settings, name);

    /// <param name="dll">Another build of the hub (the publish output); it is started as it is,
    /// from an empty working directory.</param>
    public static async Task<HubProcess> StartAsync(
        IReadOnlyDictionary<string, string?> baseSettings, IReadOnlyDictionary<string, string?>? settings, string name,
        TimeSpan? healthTimeout = null, string? dll = null)
    {
        var published = dll is not null;
        dll ??= Path.Combine(Path.GetDirectoryName(typeof(Program).Assembly.Location)
            ?? throw new InvalidOperationException("Cannot locate Postback.dll."), "Postback.dll");
        var workingDirectory = Path.Combine(Path.GetTempPath(), "postback-tests", "proc-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(workingDirectory);
        // The content root is the working directory: give it the hub's own appsettings.json
        // (log levels), everything else comes from the environment.
        var appsettings = Path.Combine(Path.GetDirectoryName(dll)!, "appsettings.json");
        if (!published && File.Exists(appsettings))
        {
            File.Copy(appsettings, Path.Combine(workingDirectory, "appsettings.json"));
        }
        var output = new OutputLines();
        try
        {
            var hub = await HubLauncher.StartAsync(new HubLaunch
            {
                Dll = dll,
                Settings = HubSettings.With(baseSettings, settings, new Dictionary<string, string?> { ["ASPNETCORE_ENVIRONMENT"] = "Testing" }),
                WorkingDirectory = workingDirectory,
                Output = output.Append,
                // Bounded generously: on a loaded shared machine a process has taken over 60 s
                // to print its first line (a wait on a condition, not a fixed sleep).
                HealthTimeout = healthTimeout ?? TimeSpan.FromSeconds(180),
            });
            output.Append("test", "healthy");
            return new HubProcess(hub, workingDirectory, name, output);
        }
        catch (HubStartException e)
        {
            DeleteDirectory(workingDirectory);
            throw new InvalidOperationException($"{name}: {e.Message}\n--- output ---\n{output.Text}", e);
        }
    }

    /// The hub's API, authenticated with the bootstrap key.
    public HttpClient Api(string? key = ApiKey)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(120) };
        if (key is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
        return client;
    }

    /// A crash: SIGKILL, no chance to finish anything. Waits until the process is gone.
    public void Kill()
    {
        if (!_hub.HasExited)
        {
            _output.Append("test", "SIGKILL");
        }
        _hub.Kill();
    }

    /// A graceful stop: SIGTERM, then waits for the process to exit by itself (killing it and
    /// failing if it does not within <paramref name="timeout"/>). Returns the exit code.
    public async Task<int> StopAsync(TimeSpan? timeout = null)
    {
        if (_hub.HasExited)
        {
            return _hub.ExitCode!.Value;
        }
        var limit = timeout ?? TimeSpan.FromSeconds(60);
        _output.Append("test", "SIGTERM");
        if (!await _hub.TerminateAsync(limit))
        {
            throw new TimeoutException($"{Name} (pid {Pid}) did not exit within {limit.TotalSeconds} s of SIGTERM; killed it.\n--- output ---\n{Output}");
        }
        _output.Append("test", $"exited with code {_hub.ExitCode}");
        return _hub.ExitCode!.Value;
    }

    /// TCP connections this process currently holds to 127.0.0.1:<paramref name="port"/> (Linux:
    /// its socket descriptors matched against /proc/net/tcp). Null where /proc cannot tell.
    public int? ConnectionsTo(int port)
    {
        if (!OperatingSystem.IsLinux() || _hub.HasExited)
        {
            return null;
        }
        try
        {
            var inodes = new HashSet<string>(StringComparer.Ordinal);
            foreach (var fd in Directory.EnumerateFileSystemEntries($"/proc/{Pid}/fd"))
            {
                try
                {
                    var target = new FileInfo(fd).LinkTarget;
                    if (target is not null && target.StartsWith("socket:[", StringComparison.Ordinal))
                    {
                        inodes.Add(target[8..^1]);
                    }
                }
                catch (IOException)
                {
                    // The descriptor closed while we looked.
                }
            }
            // 127.0.0.1 as /proc writes it; in tcp6 a dual-mode socket shows ::ffff:127.0.0.1, which ends the same.
            var remote = $"0100007F:{port:X4}";
            var count = 0;
            foreach (var table in new[] { "tcp", "tcp6" })
            {
                var path = $"/proc/{Pid}/net/{table}";
                if (!File.Exists(path))
                {
                    continue;
                }
                foreach (var line in File.ReadLines(path).Skip(1))
                {
                    var columns = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
                    if (columns.Length > 9 && columns[2].EndsWith(remote, StringComparison.Ordinal) && columns[3] == "01" && inodes.Contains(columns[9]))
                    {
                        count++;
                    }
                }
            }
            return count;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public ValueTask DisposeAsync()
    {
        if (!_hub.HasExited)
        {
            _output.Append("test", "disposing: SIGKILL");
        }
        _hub.Dispose();
        DeleteDirectory(_workingDirectory);
        return ValueTask.CompletedTask;
    }

    private static void DeleteDirectory(string path)
    {
        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
