using Microsoft.Data.Sqlite;
using Npgsql;

namespace Postback.Storage;

/// What kind of database failure an exception is, on either provider.
public static class DatabaseErrors
{
    private const int SqliteBusy = 5;
    private const int SqliteLocked = 6;
    private const int SqliteConstraintUnique = 2067;
    private const int SqliteConstraintPrimaryKey = 1555;

    /// A failure that may well pass if the same work is run again: SQLite busy or locked;
    /// on PostgreSQL whatever Npgsql calls transient (serialization failure, deadlock, lock not
    /// available, connection lost, server starting or out of connections).
    public static bool IsTransient(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            switch (x)
            {
                case NpgsqlException npgsql when npgsql.IsTransient:
                case SqliteException { SqliteErrorCode: SqliteBusy or SqliteLocked }:
                    return true;
            }
        }
        return false;
    }

    /// A unique index (or key) refused the row: someone else stored the same thing first.
    public static bool IsUniqueViolation(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            switch (x)
            {
                case PostgresException { SqlState: PostgresErrorCodes.UniqueViolation }:
                case SqliteException { SqliteExtendedErrorCode: SqliteConstraintUnique or SqliteConstraintPrimaryKey }:
                    return true;
            }
        }
        return false;
    }
}
