using System.Globalization;
using System.Runtime.InteropServices;

namespace Postback.Bench;

/// Linux /proc readings: memory and CPU of the hub, of this process, of the PostgreSQL server
/// processes, and of the whole machine.
public static partial class Proc
{
    private static readonly double TicksPerSecond = ClockTicks();

    public readonly record struct Memory(long RssKb, long HwmKb);

    public static Memory? ReadMemory(int pid)
    {
        try
        {
            long rss = 0, hwm = 0;
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    rss = Kb(line);
                }
                else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    hwm = Kb(line);
                }
            }
            return new Memory(rss, hwm);
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static long Kb(string line) =>
        long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);

    /// User + system CPU seconds of one process (all its threads), or null once it is gone.
    public static double? CpuSeconds(int pid)
    {
        try
        {
            var (_, utime, stime) = Stat(File.ReadAllText($"/proc/{pid}/stat"));
            return (utime + stime) / TicksPerSecond;
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// CPU seconds of every live process whose command name is <paramref name="comm"/>
    /// (the PostgreSQL postmaster and its backends are all "postgres").
    public static double CpuSecondsOf(string comm)
    {
        double total = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            var name = Path.GetFileName(dir);
            if (name.Length == 0 || !char.IsAsciiDigit(name[0]))
            {
                continue;
            }
            try
            {
                var (c, utime, stime) = Stat(File.ReadAllText(Path.Combine(dir, "stat")));
                if (c == comm)
                {
                    total += (utime + stime) / TicksPerSecond;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
            {
            }
        }
        return total;
    }

    /// CPU seconds of each thread of a process whose name starts with <paramref name="prefix"/>.
    public static Dictionary<int, double> ThreadCpu(int pid, string prefix)
    {
        var result = new Dictionary<int, double>();
        try
        {
            foreach (var dir in Directory.EnumerateDirectories($"/proc/{pid}/task"))
            {
                try
                {
                    var (comm, utime, stime) = Stat(File.ReadAllText(Path.Combine(dir, "stat")));
                    if (comm.StartsWith(prefix, StringComparison.Ordinal))
                    {
                        result[int.Parse(Path.GetFileName(dir), CultureInfo.InvariantCulture)] = (utime + stime) / TicksPerSecond;
                    }
                }
                catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException)
                {
                }
            }
        }
        catch (IOException)
        {
        }
        return result;
    }

    private static (string Comm, long UTime, long STime) Stat(string stat)
    {
        var open = stat.IndexOf('(');
        var close = stat.LastIndexOf(')');
        var comm = stat[(open + 1)..close];
        // After ")": state is field 3, utime field 14, stime field 15.
        var rest = stat[(close + 2)..].Split(' ');
        return (comm, long.Parse(rest[11], CultureInfo.InvariantCulture), long.Parse(rest[12], CultureInfo.InvariantCulture));
    }

    /// Whole-machine jiffies: busy (everything but idle and iowait), iowait, and total.
    public readonly record struct MachineCpu(long Busy, long IoWait, long Total);

    public static MachineCpu ReadMachine()
    {
        var first = File.ReadLines("/proc/stat").First();
        var v = first.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8)
            .Select(x => long.Parse(x, CultureInfo.InvariantCulture)).ToArray();
        var total = v.Sum();
        var idle = v[3];
        var iowait = v[4];
        return new MachineCpu(total - idle - iowait, iowait, total);
    }

    /// Bytes a process caused to be written to storage (/proc/pid/io write_bytes).
    public static long? WriteBytes(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/io"))
            {
                if (line.StartsWith("write_bytes:", StringComparison.Ordinal))
                {
                    return long.Parse(line["write_bytes:".Length..].Trim(), CultureInfo.InvariantCulture);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return null;
    }

    public static int ThreadCount(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("Threads:", StringComparison.Ordinal))
                {
                    return int.Parse(line["Threads:".Length..].Trim(), CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
        }
        return 0;
    }

    [LibraryImport("libc", EntryPoint = "sysconf")]
    private static partial long SysConf(int name);

    /// Writes every dirty page of every file system to disk (sync(2)) and waits for it.
    [LibraryImport("libc", EntryPoint = "sync")]
    public static partial void Sync();

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    public const int SigTerm = 15;

    private static double ClockTicks()
    {
        try
        {
            var t = SysConf(2); // _SC_CLK_TCK
            return t > 0 ? t : 100;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return 100;
        }
    }
}

/// CPU use over one phase: the hub, this process (receiver and load generators), the
/// PostgreSQL processes, and the machine.
public sealed record CpuSnapshot(double Hub, double HubJit, double Bench, double Postgres, Proc.MachineCpu Machine, long HubWritten, long Timestamp)
{
    public static CpuSnapshot Take(HubProcess hub, bool postgres) => new(
        Proc.CpuSeconds(hub.Pid) ?? 0,
        hub.JitSeconds,
        Proc.CpuSeconds(Environment.ProcessId) ?? 0,
        postgres ? Proc.CpuSecondsOf("postgres") : 0,
        Proc.ReadMachine(),
        Proc.WriteBytes(hub.Pid) ?? 0,
        System.Diagnostics.Stopwatch.GetTimestamp());
}

public sealed record CpuUse(double Seconds, double HubCores, double HubJitCores, double BenchCores, double PostgresCores, double MachineBusy, double MachineIoWait, long HubWrittenBytes)
{
    /// Cores busy with anything else on the machine (other processes, the kernel's own work).
    public double OtherCores => Math.Max(0, MachineBusy * Environment.ProcessorCount - HubCores - BenchCores - PostgresCores);

    public static CpuUse Between(CpuSnapshot a, CpuSnapshot b)
    {
        var seconds = System.Diagnostics.Stopwatch.GetElapsedTime(a.Timestamp, b.Timestamp).TotalSeconds;
        var total = Math.Max(1, b.Machine.Total - a.Machine.Total);
        return new CpuUse(
            seconds,
            (b.Hub - a.Hub) / seconds,
            (b.HubJit - a.HubJit) / seconds,
            (b.Bench - a.Bench) / seconds,
            (b.Postgres - a.Postgres) / seconds,
            (double)(b.Machine.Busy - a.Machine.Busy) / total,
            (double)(b.Machine.IoWait - a.Machine.IoWait) / total,
            b.HubWritten - a.HubWritten);
    }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture,
            $"hub {HubCores:0.00} cores (JIT tier-up {HubJitCores:0.00}), bench {BenchCores:0.00}, postgres {PostgresCores:0.00}, other {OtherCores:0.00}; machine {MachineBusy:P0} busy, {MachineIoWait:P0} iowait; hub wrote {HubWrittenBytes / 1048576.0:0.0} MiB");
}
