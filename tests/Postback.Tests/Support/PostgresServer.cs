using Npgsql;

namespace Postback.Tests.Support;

/// The PostgreSQL server the test command starts on loopback. Each caller gets a database of
/// its own, so test classes never see each other's rows.
public static class PostgresServer
{
    public const string Variable = "POSTBACK_TEST_POSTGRES";

    public static string AdminConnectionString =>
        Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"{Variable} is not set. The PostgreSQL tests need a real server: run ./test.sh, which installs and starts one on 127.0.0.1.");

    public static async Task<string> CreateDatabaseAsync(string prefix)
    {
        var name = $"{prefix}_{Guid.NewGuid():N}".ToLowerInvariant();
        name = name[..Math.Min(name.Length, 63)];
        await using var connection = new NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using (var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection))
        {
            await command.ExecuteNonQueryAsync();
        }
        return new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = name }.ToString();
    }
}
