using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Postback.Bench;

/// The hub under test: `dotnet Postback.dll --urls http://127.0.0.1:PORT` in its own process,
/// configured only through environment variables, with stdout and stderr in a log file. Its
/// memory is sampled from /proc while it runs; it is stopped by PID (SIGTERM, then SIGKILL).
public sealed class HubProcess : IAsyncDisposable
{
    // Every hub this process started, so an exit (Ctrl-C, SIGTERM from `timeout`) kills it.
    private static readonly ConcurrentDictionary<int, Process> Started = new();

    static HubProcess()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll();
        Console.CancelKeyPress += (_, _) => KillAll();
    }

    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly CancellationTokenSource _stopSampling = new();
    private readonly Task _sampler;
    private long _peakRssKb;
    private int _peakThreads;
    private readonly Dictionary<int, double> _jitThreads = [];
    private double _jitSeconds;
    private bool _stopped;

    public int Pid { get; }

    public Uri BaseUri { get; }

    public string LogPath { get; }

    public string? PidFile { get; }

    private HubProcess(Process process, StreamWriter log, Uri baseUri, string logPath, string? pidFile)
    {
        _process = process;
        _log = log;
        Pid = process.Id;
        BaseUri = baseUri;
        LogPath = logPath;
        PidFile = pidFile;
        _sampler = Task.Run(SampleAsync);
    }

    /// Highest VmRSS seen by the 100 ms sampler.
    public long PeakSampledRssKb => Interlocked.Read(ref _peakRssKb);

    /// CPU seconds the hub's tiered-compilation thread(s) used so far (sampled every 100 ms).
    public double JitSeconds
    {
        get
        {
            lock (_jitThreads)
            {
                return _jitSeconds;
            }
        }
    }

    /// Most threads the hub had at once (sampled every 100 ms): blocked threads make the pool grow.
    public int PeakThreads => Volatile.Read(ref _peakThreads);

    public Proc.Memory Memory() => Proc.ReadMemory(Pid) ?? new Proc.Memory(0, 0);

    public bool HasExited => _process.HasExited;

    public static async Task<HubProcess> StartAsync(
        string hubDll, IReadOnlyDictionary<string, string> environment, string logPath, string? pidFile, TimeSpan healthTimeout)
    {
        for (var attempt = 1; ; attempt++)
        {
            var port = FreePort();
            var hub = Launch(hubDll, environment, port, logPath, pidFile);
            if (await hub.WaitHealthyAsync(healthTimeout))
            {
                return hub;
            }
            var exited = hub.HasExited;
            await hub.DisposeAsync();
            var tail = Tail(logPath, 40);
            if (exited && attempt < 3 && tail.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }
            throw new BenchException($"the hub did not answer GET /health within {healthTimeout.TotalSeconds:0} s (exited: {exited}); last lines of {logPath}:\n{tail}");
        }
    }

    private static HubProcess Launch(string hubDll, IReadOnlyDictionary<string, string> environment, int port, string logPath, string? pidFile)
    {
        var url = $"http://127.0.0.1:{port}";
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Path.GetDirectoryName(Path.GetFullPath(hubDll))!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(hubDll);
        info.ArgumentList.Add("--urls");
        info.ArgumentList.Add(url);
        // Nothing from the caller's shell may reconfigure the hub under test.
        foreach (var key in info.Environment.Keys.ToList())
        {
            if (key.StartsWith("Postback__", StringComparison.OrdinalIgnoreCase)
                || key.StartsWith("ConnectionStrings__", StringComparison.OrdinalIgnoreCase)
                || key.StartsWith("ASPNETCORE_", StringComparison.OrdinalIgnoreCase)
                || key.StartsWith("DOTNET_ENVIRONMENT", StringComparison.OrdinalIgnoreCase)
                || key.StartsWith("Logging__", StringComparison.OrdinalIgnoreCase))
            {
                info.Environment.Remove(key);
            }
        }
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        var log = new StreamWriter(logPath, append: true) { AutoFlush = true };
        var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => Write(log, e.Data);
        process.ErrorDataReceived += (_, e) => Write(log, e.Data);
        if (!process.Start())
        {
            throw new BenchException("could not start dotnet " + hubDll);
        }
        process.StandardInput.Close();
        Started[process.Id] = process;
        if (pidFile is not null)
        {
            File.WriteAllText(pidFile, process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new HubProcess(process, log, new Uri(url + "/"), logPath, pidFile);
    }

    private static void Write(StreamWriter log, string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (log)
        {
            try
            {
                log.WriteLine(line);
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    private async Task<bool> WaitHealthyAsync(TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline)
        {
            if (_process.HasExited)
            {
                return false;
            }
            try
            {
                using var response = await http.GetAsync(new Uri(BaseUri, "health"));
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return true;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }
            await Task.Delay(200);
        }
        return false;
    }

    private async Task SampleAsync()
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
        try
        {
            while (await timer.WaitForNextTickAsync(_stopSampling.Token))
            {
                if (Proc.ReadMemory(Pid) is { } m && m.RssKb > Interlocked.Read(ref _peakRssKb))
                {
                    Interlocked.Exchange(ref _peakRssKb, m.RssKb);
                }
                // Background JIT (tiered compilation): accumulated per thread, as the thread
                // comes and goes.
                foreach (var (tid, cpu) in Proc.ThreadCpu(Pid, ".NET Tiered"))
                {
                    var before = _jitThreads.GetValueOrDefault(tid);
                    _jitThreads[tid] = cpu;
                    lock (_jitThreads)
                    {
                        _jitSeconds += cpu - before;
                    }
                }
                var threads = Proc.ThreadCount(Pid);
                if (threads > Volatile.Read(ref _peakThreads))
                {
                    Volatile.Write(ref _peakThreads, threads);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// SIGTERM (the hub drains its sends, up to Postback:Delivery:ShutdownSeconds), then
    /// SIGKILL if it is still there after <paramref name="grace"/>.
    public async Task StopAsync(TimeSpan grace)
    {
        if (_stopped)
        {
            return;
        }
        _stopped = true;
        await _stopSampling.CancelAsync();
        if (!_process.HasExited)
        {
            Proc.Kill(Pid, Proc.SigTerm);
            using var wait = new CancellationTokenSource(grace);
            try
            {
                await _process.WaitForExitAsync(wait.Token);
            }
            catch (OperationCanceledException)
            {
                Console.Error.WriteLine($"[bench] hub {Pid} did not stop within {grace.TotalSeconds:0} s of SIGTERM; killing it");
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync(CancellationToken.None);
            }
        }
        Started.TryRemove(Pid, out _);
        await _sampler;
        if (PidFile is not null)
        {
            File.Delete(PidFile);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromSeconds(20));
        lock (_log)
        {
            _log.Dispose();
        }
        _process.Dispose();
        _stopSampling.Dispose();
    }

    private static void KillAll()
    {
        foreach (var (pid, process) in Started)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                }
            }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
            {
            }
            Started.TryRemove(pid, out _);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public static string Tail(string path, int lines)
    {
        try
        {
            return string.Join('\n', ReadLines(path).TakeLast(lines));
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }

    /// The log's lines, readable while the hub still writes it.
    public static List<string> ReadLines(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        var lines = new List<string>();
        while (reader.ReadLine() is { } line)
        {
            lines.Add(line);
        }
        return lines;
    }
}

public sealed class BenchException(string message) : Exception(message);
