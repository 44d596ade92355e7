using System.Collections.Concurrent;
using Postback.Testing;

namespace Postback.Bench;

/// The hub under test, in its own process (Postback.Testing's HubLauncher, which the tests use
/// too), with stdout and stderr in a log file. Its memory is sampled from /proc while it runs;
/// it is stopped by PID (SIGTERM, then SIGKILL).
public sealed class HubProcess : IAsyncDisposable
{
    // Every hub this process started, so an exit (Ctrl-C, SIGTERM from `timeout`) kills it.
    private static readonly ConcurrentDictionary<int, HubLauncher> Started = new();

    static HubProcess()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll();
        Console.CancelKeyPress += (_, _) => KillAll();
    }

    private readonly HubLauncher _process;
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

    private HubProcess(HubLauncher process, StreamWriter log, string logPath, string? pidFile)
    {
        _process = process;
        _log = log;
        Pid = process.Pid;
        BaseUri = process.BaseAddress;
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
        var log = new StreamWriter(logPath, append: true) { AutoFlush = true };
        HubLauncher hub;
        try
        {
            hub = await HubLauncher.StartAsync(new HubLaunch
            {
                Dll = hubDll,
                Settings = environment.ToDictionary(e => e.Key, e => (string?)e.Value),
                Output = (_, line) => Write(log, line),
                HealthTimeout = healthTimeout,
            });
        }
        catch (HubStartException e)
        {
            log.Dispose();
            throw new BenchException($"{e.Message}\n(the whole log: {logPath})");
        }
        Started[hub.Pid] = hub;
        if (pidFile is not null)
        {
            File.WriteAllText(pidFile, hub.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        return new HubProcess(hub, log, logPath, pidFile);
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
        if (!_process.HasExited && !await _process.TerminateAsync(grace))
        {
            Console.Error.WriteLine($"[bench] hub {Pid} did not stop within {grace.TotalSeconds:0} s of SIGTERM; killed it");
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
                process.Kill();
            }
            catch (Exception e) when (e is InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception)
            {
            }
            Started.TryRemove(pid, out _);
        }
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
