using Audit.Projections.Embedded;
using Audit.Projections.Storage;
using Npgsql;

namespace Audit.Api.Composition;

/// <summary>
/// Where the data lives: --db, else AUDIT_DB, else the embedded cluster under $AUDIT_HOME.
/// Opening also applies pending migrations (the same runner the tests use).
/// </summary>
public static class Database
{
    /// <summary>The connection string in use, and how to name it in messages.</summary>
    public static async Task<(string ConnectionString, string Where)> ResolveAsync(string? db, TextWriter log, CancellationToken ct)
    {
        var cs = db ?? Environment.GetEnvironmentVariable("AUDIT_DB");
        if (string.IsNullOrWhiteSpace(cs))
        {
            var embedded = new EmbeddedPostgres(EmbeddedPostgres.DefaultHome());
            cs = await embedded.EnsureStartedAsync(m => log.WriteLine(m), ct);
            return (cs, $"the embedded database under {embedded.Home}");
        }

        return (cs, "the database given by " + (db is not null ? "--db" : "AUDIT_DB"));
    }

    public static async Task<NpgsqlDataSource> OpenAsync(string? db, TextWriter log, CancellationToken ct)
    {
        var (cs, where) = await ResolveAsync(db, log, ct);

        NpgsqlDataSource ds;
        try
        {
            ds = NpgsqlDataSource.Create(cs);
        }
        catch (ArgumentException ex)
        {
            throw new DatabaseUnavailableException($"{where}: the connection string is not valid ({ex.Message})", ex);
        }

        try
        {
            await Migrator.MigrateAsync(ds, ct);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
        {
            await ds.DisposeAsync();
            throw new DatabaseUnavailableException(
                $"{where} is unreachable: {ex.Message}. Check that the server runs and the connection string (--db or AUDIT_DB) is right, or unset both to use the embedded database.",
                ex);
        }

        return ds;
    }
}
