using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Postback.Bench;

/// What PostgreSQL did over a phase, from its statistics views (read with psql, which
/// bench/run.sh names in POSTBACK_BENCH_PSQL): WAL bytes and records, commits, rows written.
public sealed record PgSnapshot(long WalBytes, long WalRecords, long Commits, long Inserted, long Updated, long Deleted)
{
    public PgSnapshot Minus(PgSnapshot b) => new(WalBytes - b.WalBytes, WalRecords - b.WalRecords, Commits - b.Commits,
        Inserted - b.Inserted, Updated - b.Updated, Deleted - b.Deleted);
}

public static partial class PgStats
{
    public static async Task<PgSnapshot?> TakeAsync(string connectionString)
    {
        var psql = Environment.GetEnvironmentVariable("POSTBACK_BENCH_PSQL");
        if (string.IsNullOrEmpty(psql) || !File.Exists(psql))
        {
            Console.Error.WriteLine($"[bench] PostgreSQL statistics: no psql (POSTBACK_BENCH_PSQL is '{psql}')");
            return null;
        }
        string Part(string name, string fallback) =>
            Regex.Match(connectionString, name + "=([^;]*)", RegexOptions.IgnoreCase) is { Success: true } m ? m.Groups[1].Value : fallback;
        // Statistics reach the shared views at most once a second (PostgreSQL 15 and later).
        await Task.Delay(1_500);
        var info = new ProcessStartInfo(psql)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[]
        {
            "-h", Part("Host", "127.0.0.1"), "-p", Part("Port", "5432"), "-U", Part("Username", "postgres"), "-d", Part("Database", "postgres"),
            "-Atc", "SELECT w.wal_bytes, w.wal_records, d.xact_commit, d.tup_inserted, d.tup_updated, d.tup_deleted " +
                    "FROM pg_stat_wal w, pg_stat_database d WHERE d.datname = current_database()",
        })
        {
            info.ArgumentList.Add(a);
        }
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var f = (await output).Trim().Split('|');
        if (process.ExitCode != 0 || f.Length != 6)
        {
            Console.Error.WriteLine($"[bench] PostgreSQL statistics: psql exited {process.ExitCode}: {(await error).Trim()} {string.Join('|', f)}");
            return null;
        }
        long L(int i) => (long)decimal.Parse(f[i], CultureInfo.InvariantCulture);
        return new PgSnapshot(L(0), L(1), L(2), L(3), L(4), L(5));
    }
}
