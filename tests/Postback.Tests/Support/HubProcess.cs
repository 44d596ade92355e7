using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;

namespace Postback.Tests.Support;

/// The hub as a real, separate OS process: `dotnet Postback.dll --urls http://127.0.0.1:PORT`,
/// configured through environment variables, so a test can SIGKILL it (a crash) or SIGTERM it
/// (a graceful stop) and start another one on the same database. Everything it writes to
/// stdout and stderr is kept for diagnostics. Only ever signals the process it started, by PID.
public sealed partial class HubProcess : IAsyncDisposable
{
    public const string ApiKey = HubFactory.ApiKey;
    private const int MaxOutputLines = 20_000;
    private const int SigTerm = 15;

    private readonly Process _process;
    private readonly string _workingDirectory;
    private readonly object _outputLock = new();
    private readonly Queue<string> _output = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private int _droppedLines;

    private HubProcess(Process process, string workingDirectory, Uri baseAddress, string name)
    {
        _process = process;
        _workingDirectory = workingDirectory;
        BaseAddress = baseAddress;
        Name = name;
    }

    public Uri BaseAddress { get; }

    /// A label for messages ("hub-1"), not used by the hub itself.
    public string Name { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public int? ExitCode => _process.HasExited ? _process.ExitCode : null;

    /// Everything the process wrote so far, stdout and stderr interleaved in arrival order.
    public string Output
    {
        get
        {
            lock (_outputLock)
            {
                var text = string.Join('\n', _output);
                return _droppedLines > 0 ? $"[{_droppedLines} earlier lines dropped]\n{text}" : text;
            }
        }
    }

    /// Log lines at error or critical level (the console logger's "fail:" and "crit:"), plus
    /// unhandled exceptions written by the runtime.
    public IReadOnlyList<string> ErrorLines
    {
        get
        {
            lock (_outputLock)
            {
                return _output.Where(IsErrorLine).ToList();
            }
        }
    }

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

    /// The configuration every test hub process gets; <paramref name="settings"/> adds to or
    /// replaces it (configuration keys with ':', turned into environment variables here).
    public static Dictionary<string, string?> BaseSettings(string dataDirectory) => new()
    {
        ["Postback:BootstrapApiKey"] = ApiKey,
        ["Postback:Outbound:AllowPrivateNetworks"] = "true",
        ["Postback:Outbound:TimeoutSeconds"] = "2",
        ["Postback:Storage:DataDirectory"] = dataDirectory,
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
    };

    /// A hub process on a SQLite file in <paramref name="dataDirectory"/> (created on first start,
    /// shared by every process started on the same directory).
    public static Task<HubProcess> StartSqliteAsync(string dataDirectory, string name, IReadOnlyDictionary<string, string?>? settings = null)
    {
        var all = BaseSettings(dataDirectory);
        all["Postback:Storage:Provider"] = "sqlite";
        all["ConnectionStrings:Postback"] = $"Data Source={Path.Combine(dataDirectory, "postback.db")}";
        return StartAsync(all, settings, name);
    }

    /// A hub process on a PostgreSQL database (from <see cref="PostgresServer.CreateDatabaseAsync"/>).
    public static Task<HubProcess> StartPostgresAsync(string connectionString, string dataDirectory, string name, IReadOnlyDictionary<string, string?>? settings = null)
    {
        var all = BaseSettings(dataDirectory);
        all["Postback:Storage:Provider"] = "postgres";
        all["ConnectionStrings:Postback"] = connectionString;
        return StartAsync(all, settings, name);
    }

    public static async Task<HubProcess> StartAsync(
        IReadOnlyDictionary<string, string?> baseSettings, IReadOnlyDictionary<string, string?>? settings, string name,
        TimeSpan? healthTimeout = null, string? dll = null)
    {
        var merged = new Dictionary<string, string?>(baseSettings);
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            merged[key] = value;
        }
        // A free port can be taken between our probe and the hub's bind: try a few.
        for (var attempt = 1; ; attempt++)
        {
            var hub = Launch(merged, name, FreePort(), dll);
            try
            {
                // Bounded generously: on a loaded shared machine a process has taken over 60 s
                // to print its first line (a wait on a condition, not a fixed sleep).
                await hub.WaitHealthyAsync(healthTimeout ?? TimeSpan.FromSeconds(180));
                return hub;
            }
            catch (Exception) when (attempt < 3 && hub.HasExited && hub.Output.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                await hub.DisposeAsync();
            }
            catch
            {
                await hub.DisposeAsync();
                throw;
            }
        }
    }

    /// <param name="dll">Another build of the hub (the publish output); it is started as it is,
    /// from an empty working directory.</param>
    private static HubProcess Launch(IReadOnlyDictionary<string, string?> settings, string name, int port, string? dll)
    {
        var published = dll is not null;
        dll ??= Path.Combine(Path.GetDirectoryName(typeof(Program).Assembly.Location)
            ?? throw new InvalidOperationException("Cannot locate Postback.dll."), "Postback.dll");
        var binDirectory = Path.GetDirectoryName(dll)!;
        if (!File.Exists(dll) || !File.Exists(Path.Combine(binDirectory, "Postback.runtimeconfig.json")))
        {
            throw new InvalidOperationException($"Postback.dll or Postback.runtimeconfig.json is missing in {binDirectory}.");
        }

        var workingDirectory = Path.Combine(Path.GetTempPath(), "postback-tests", "proc-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(workingDirectory);
        // The content root is the working directory: give it the hub's own appsettings.json
        // (log levels), everything else comes from the environment.
        var appsettings = Path.Combine(binDirectory, "appsettings.json");
        if (!published && File.Exists(appsettings))
        {
            File.Copy(appsettings, Path.Combine(workingDirectory, "appsettings.json"));
        }

        var baseAddress = new Uri($"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}");
        var start = new ProcessStartInfo(DotnetHost())
        {
            WorkingDirectory = workingDirectory,
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        start.ArgumentList.Add(dll);
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add(baseAddress.ToString().TrimEnd('/'));

        // Nothing from the test process's own environment may configure the hub.
        foreach (var key in start.Environment.Keys.ToList())
        {
            if (key.StartsWith("Postback__", StringComparison.OrdinalIgnoreCase)
                || key.StartsWith("ConnectionStrings__", StringComparison.OrdinalIgnoreCase)
                || key.StartsWith("Logging__", StringComparison.OrdinalIgnoreCase)
                || key.StartsWith("ASPNETCORE_", StringComparison.OrdinalIgnoreCase)
                || key.StartsWith("DOTNET_STARTUP_HOOKS", StringComparison.OrdinalIgnoreCase)
                || key.Equals("POSTBACK_TEST_POSTGRES", StringComparison.OrdinalIgnoreCase))
            {
                start.Environment.Remove(key);
            }
        }
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Testing";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (key, value) in settings)
        {
            start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var hub = new HubProcess(process, workingDirectory, baseAddress, name);
        process.OutputDataReceived += (_, e) => hub.Append("out", e.Data);
        process.ErrorDataReceived += (_, e) => hub.Append("err", e.Data);
        if (!process.Start())
        {
            throw new InvalidOperationException($"Could not start {start.FileName} {dll}.");
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        hub.Append("test", $"started pid {process.Id}: {start.FileName} {string.Join(' ', start.ArgumentList)}");
        return hub;
    }

    /// The dotnet host running this test (the SDK sets DOTNET_HOST_PATH), else `dotnet` on PATH.
    private static string DotnetHost()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host))
        {
            return host;
        }
        if (Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            return self;
        }
        return "dotnet";
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private void Append(string stream, string? line)
    {
        if (line is null)
        {
            return;
        }
        var stamped = $"{_clock.Elapsed.TotalSeconds:0.000}s [{stream}] {line}";
        lock (_outputLock)
        {
            _output.Enqueue(stamped);
            while (_output.Count > MaxOutputLines)
            {
                _output.Dequeue();
                _droppedLines++;
            }
        }
    }

    private async Task WaitHealthyAsync(TimeSpan timeout)
    {
        using var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(5) };
        var deadline = Stopwatch.StartNew();
        string last = "no answer yet";
        while (deadline.Elapsed < timeout)
        {
            if (_process.HasExited)
            {
                await WaitForOutputAsync();
                throw new InvalidOperationException(
                    $"{Name} (pid {Pid}) exited with code {_process.ExitCode} before /health answered.\n--- output ---\n{Output}");
            }
            try
            {
                using var response = await client.GetAsync("/health");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    Append("test", $"healthy after {deadline.Elapsed.TotalSeconds:0.0} s");
                    return;
                }
                last = $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}";
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                last = e.Message;
            }
            await Task.Delay(100);
        }
        throw new TimeoutException(
            $"{Name} (pid {Pid}) did not answer GET /health with 200 within {timeout.TotalSeconds} s (last: {last}).\n--- output ---\n{Output}");
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
        if (_process.HasExited)
        {
            return;
        }
        Append("test", "SIGKILL");
        _process.Kill(entireProcessTree: true);
        if (!_process.WaitForExit(TimeSpan.FromSeconds(30)))
        {
            throw new TimeoutException($"{Name} (pid {Pid}) did not exit within 30 s of SIGKILL.");
        }
    }

    /// A graceful stop: SIGTERM, then waits for the process to exit by itself (killing it and
    /// failing if it does not within <paramref name="timeout"/>). Returns the exit code.
    public async Task<int> StopAsync(TimeSpan? timeout = null)
    {
        if (_process.HasExited)
        {
            return _process.ExitCode;
        }
        var limit = timeout ?? TimeSpan.FromSeconds(60);
        Append("test", "SIGTERM");
        if (SendSignal(_process.Id, SigTerm) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (!_process.HasExited)
            {
                throw new InvalidOperationException($"kill({Pid}, SIGTERM) failed with errno {errno}.");
            }
        }
        using var cts = new CancellationTokenSource(limit);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            var output = Output;
            Kill();
            throw new TimeoutException($"{Name} (pid {Pid}) did not exit within {limit.TotalSeconds} s of SIGTERM; killed it.\n--- output ---\n{output}");
        }
        await WaitForOutputAsync();
        Append("test", $"exited with code {_process.ExitCode}");
        return _process.ExitCode;
    }

    // Process.WaitForExit() (no timeout) also waits for the redirected streams to reach their end.
    private async Task WaitForOutputAsync()
    {
        await Task.Run(() => _process.WaitForExit(TimeSpan.FromSeconds(10)));
        await Task.Run(() => _process.WaitForExit());
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);

    /// TCP connections this process currently holds to 127.0.0.1:<paramref name="port"/> (Linux:
    /// its socket descriptors matched against /proc/net/tcp). Null where /proc cannot tell.
    public int? ConnectionsTo(int port)
    {
        if (!OperatingSystem.IsLinux() || _process.HasExited)
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

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                Append("test", "disposing: SIGKILL");
                _process.Kill(entireProcessTree: true);
                await Task.Run(() => _process.WaitForExit(TimeSpan.FromSeconds(30)));
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
        _process.Dispose();
        try
        {
            Directory.Delete(_workingDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
