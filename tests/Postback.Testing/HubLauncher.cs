using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Postback.Testing;

/// How to start a hub process.
public sealed record HubLaunch
{
    /// The hub's Postback.dll (its runtimeconfig.json beside it).
    public required string Dll { get; init; }

    /// Configuration keys ("Postback:Delivery:Enabled") or environment variable names
    /// ("Postback__Delivery__Enabled"); ':' becomes "__".
    public required IReadOnlyDictionary<string, string?> Settings { get; init; }

    /// The process's working directory (its content root): the dll's folder when null.
    public string? WorkingDirectory { get; init; }

    /// Every line the process writes, with "out" or "err"; called on the reader's thread.
    public Action<string, string>? Output { get; init; }

    public TimeSpan HealthTimeout { get; init; } = TimeSpan.FromSeconds(120);
}

/// Thrown when a hub process did not become healthy; the message ends with its last lines.
public sealed class HubStartException(string message, bool exited) : Exception(message)
{
    public bool Exited { get; } = exited;
}

/// The hub as a real, separate OS process, for the tests and the benchmark alike:
/// `dotnet Postback.dll --urls http://127.0.0.1:PORT`, configured only through environment
/// variables (nothing from the caller's own environment configures it), healthy once GET
/// /health answers 200. It is only ever signalled by its own PID: SIGTERM for a graceful stop,
/// SIGKILL for a crash.
public sealed class HubLauncher : IDisposable
{
    private const int SigTerm = 15;
    private const int KeptLines = 200;

    // Environment variables of the caller that would configure the hub under test.
    private static readonly string[] Scrubbed =
        ["Postback__", "ConnectionStrings__", "Logging__", "ASPNETCORE_", "DOTNET_ENVIRONMENT", "DOTNET_STARTUP_HOOKS", "POSTBACK_TEST_POSTGRES"];

    private readonly Process _process;
    private readonly Queue<string> _last = new();
    private bool _addressInUse;

    private HubLauncher(Process process, Uri baseAddress)
    {
        _process = process;
        BaseAddress = baseAddress;
    }

    public Uri BaseAddress { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public int? ExitCode => _process.HasExited ? _process.ExitCode : null;

    /// Starts the hub on a free loopback port and waits until it is healthy. A port can be taken
    /// between our probe and the hub's bind: then it tries another, up to three times.
    public static async Task<HubLauncher> StartAsync(HubLaunch launch)
    {
        for (var attempt = 1; ; attempt++)
        {
            var hub = Launch(launch, FreePort());
            try
            {
                await hub.WaitHealthyAsync(launch.HealthTimeout);
                return hub;
            }
            catch (HubStartException) when (attempt < 3 && hub.HasExited && hub._addressInUse)
            {
                hub.Dispose();
            }
            catch
            {
                hub.Dispose();
                throw;
            }
        }
    }

    private static HubLauncher Launch(HubLaunch launch, int port)
    {
        var dll = Path.GetFullPath(launch.Dll);
        var binDirectory = Path.GetDirectoryName(dll)!;
        if (!File.Exists(dll) || !File.Exists(Path.Combine(binDirectory, "Postback.runtimeconfig.json")))
        {
            throw new InvalidOperationException($"Postback.dll or Postback.runtimeconfig.json is missing in {binDirectory}.");
        }
        var baseAddress = new Uri($"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}");
        var start = new ProcessStartInfo(DotnetHost())
        {
            WorkingDirectory = launch.WorkingDirectory ?? binDirectory,
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
        foreach (var key in start.Environment.Keys.ToList())
        {
            if (Scrubbed.Any(prefix => key.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)))
            {
                start.Environment.Remove(key);
            }
        }
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (key, value) in launch.Settings)
        {
            start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var hub = new HubLauncher(process, baseAddress);
        process.OutputDataReceived += (_, e) => hub.Append("out", e.Data, launch.Output);
        process.ErrorDataReceived += (_, e) => hub.Append("err", e.Data, launch.Output);
        if (!process.Start())
        {
            throw new InvalidOperationException($"Could not start {start.FileName} {dll}.");
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        launch.Output?.Invoke("launcher", $"started pid {process.Id}: {start.FileName} {string.Join(' ', start.ArgumentList)}");
        return hub;
    }

    private void Append(string stream, string? line, Action<string, string>? output)
    {
        if (line is null)
        {
            return;
        }
        lock (_last)
        {
            _last.Enqueue(line);
            if (_last.Count > KeptLines)
            {
                _last.Dequeue();
            }
            _addressInUse |= line.Contains("address already in use", StringComparison.OrdinalIgnoreCase);
        }
        output?.Invoke(stream, line);
    }

    /// The last lines the process wrote (at most 200).
    public string LastLines
    {
        get
        {
            lock (_last)
            {
                return string.Join('\n', _last);
            }
        }
    }

    /// The dotnet host running this process (the SDK sets DOTNET_HOST_PATH), else `dotnet` on PATH.
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

    // Polls /health until it answers 200: a wait on a condition, bounded generously (on a loaded
    // shared machine a process has taken over 60 s to print its first line).
    private async Task WaitHealthyAsync(TimeSpan timeout)
    {
        using var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(5) };
        var clock = Stopwatch.StartNew();
        var last = "no answer yet";
        while (clock.Elapsed < timeout)
        {
            if (_process.HasExited)
            {
                await WaitForOutputAsync();
                throw new HubStartException(
                    $"the hub (pid {Pid}) exited with code {_process.ExitCode} before /health answered.\n--- last lines ---\n{LastLines}", exited: true);
            }
            try
            {
                using var response = await client.GetAsync("/health");
                if (response.StatusCode == HttpStatusCode.OK)
                {
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
        throw new HubStartException(
            $"the hub (pid {Pid}) did not answer GET /health with 200 within {timeout.TotalSeconds:0} s (last: {last}).\n--- last lines ---\n{LastLines}",
            exited: _process.HasExited);
    }

    /// A crash: SIGKILL, no chance to finish anything. Waits until the process is gone.
    public void Kill()
    {
        try
        {
            if (_process.HasExited)
            {
                return;
            }
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            return;
        }
        if (!_process.WaitForExit(TimeSpan.FromSeconds(30)))
        {
            throw new TimeoutException($"The hub (pid {Pid}) did not exit within 30 s of SIGKILL.");
        }
    }

    /// A graceful stop: SIGTERM, then waits for the process to exit by itself. Returns false,
    /// having killed it, when it does not within `timeout`.
    public async Task<bool> TerminateAsync(TimeSpan timeout)
    {
        if (_process.HasExited)
        {
            return true;
        }
        if (SendSignal(_process.Id, SigTerm) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (!_process.HasExited)
            {
                throw new InvalidOperationException($"kill({Pid}, SIGTERM) failed with errno {errno}.");
            }
        }
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            return false;
        }
        await WaitForOutputAsync();
        return true;
    }

    // Process.WaitForExit() (no timeout) also waits for the redirected streams to reach their end.
    private async Task WaitForOutputAsync()
    {
        await Task.Run(() => _process.WaitForExit(TimeSpan.FromSeconds(10)));
        await Task.Run(() => _process.WaitForExit());
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);

    /// Kills the process if it still runs, and lets it go.
    public void Dispose()
    {
        try
        {
            Kill();
        }
        catch (TimeoutException)
        {
        }
        _process.Dispose();
    }
}
