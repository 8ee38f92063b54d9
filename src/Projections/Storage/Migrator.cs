using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Npgsql;

namespace Audit.Projections.Storage;

/// <summary>
/// Applies the numbered, forward-only SQL files of migrations/ (embedded in this assembly) to the
/// connection's current schema, each once, recorded in schema_migrations. An advisory lock keyed by
/// schema makes two processes starting together safe: the second waits, then finds nothing to do.
/// </summary>
public static class Migrator
{
    public sealed record Migration(string Id, string Sql, string Checksum);

    public static IReadOnlyList<Migration> All()
    {
        var asm = typeof(Migrator).Assembly;
        return asm.GetManifestResourceNames()
            .Where(n => n.StartsWith("migrations/", StringComparison.Ordinal) && n.EndsWith(".sql", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(n => Load(asm, n))
            .ToList();
    }

    /// <summary>Returns the ids applied by this call (empty when the schema was current).</summary>
    public static Task<IReadOnlyList<string>> MigrateAsync(NpgsqlDataSource dataSource, CancellationToken ct = default) =>
        MigrateAsync(dataSource, null, ct);

    /// <summary>Applies the migrations up to and including <paramref name="through"/> (all when null): a schema as an older build left it.</summary>
    public static async Task<IReadOnlyList<string>> MigrateAsync(NpgsqlDataSource dataSource, string? through, CancellationToken ct = default)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        // Per schema, and database-wide too: extensions are per database, so two schemas migrating at once must not race.
        await Exec(conn, "select pg_advisory_lock(hashtext('audit.migrations'))", ct);
        await Exec(conn, "select pg_advisory_lock(hashtext('audit.migrations:' || current_schema()))", ct);
        try
        {
            await Exec(conn, """
                create table if not exists schema_migrations (
                    id         text        not null primary key,
                    checksum   text        not null,
                    applied_at timestamptz not null default now())
                """, ct);

            var applied = new Dictionary<string, string>(StringComparer.Ordinal);
            await using (var cmd = new NpgsqlCommand("select id, checksum from schema_migrations", conn))
            await using (var r = await cmd.ExecuteReaderAsync(ct))
            {
                while (await r.ReadAsync(ct))
                {
                    applied[r.GetString(0)] = r.GetString(1);
                }
            }

            var done = new List<string>();
            foreach (var m in All().Where(m => through is null || string.CompareOrdinal(m.Id, through) <= 0))
            {
                if (applied.TryGetValue(m.Id, out var sum))
                {
                    if (sum != m.Checksum)
                    {
                        throw new InvalidOperationException($"migration {m.Id} was changed after it was applied; migrations are forward-only: add a new file instead");
                    }

                    continue;
                }

                await using var tx = await conn.BeginTransactionAsync(ct);
                await using (var cmd = new NpgsqlCommand(m.Sql, conn, tx))
                {
                    await cmd.ExecuteNonQueryAsync(ct);
                }

                await using (var cmd = new NpgsqlCommand("insert into schema_migrations (id, checksum) values ($1, $2)", conn, tx))
                {
                    cmd.Parameters.Add(new() { Value = m.Id });
                    cmd.Parameters.Add(new() { Value = m.Checksum });
                    await cmd.ExecuteNonQueryAsync(ct);
                }

                await tx.CommitAsync(ct);
                done.Add(m.Id);
            }

            return done;
        }
        finally
        {
            await Exec(conn, "select pg_advisory_unlock(hashtext('audit.migrations:' || current_schema()))", CancellationToken.None);
            await Exec(conn, "select pg_advisory_unlock(hashtext('audit.migrations'))", CancellationToken.None);
        }
    }

    private static Migration Load(Assembly asm, string resource)
    {
        using var s = asm.GetManifestResourceStream(resource)!;
        using var reader = new StreamReader(s, Encoding.UTF8);
        var sql = reader.ReadToEnd();
        var id = Path.GetFileNameWithoutExtension(resource["migrations/".Length..]);
        var checksum = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sql.ReplaceLineEndings("\n"))));
        return new Migration(id, sql, checksum);
    }

    private static async Task Exec(NpgsqlConnection conn, string sql, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
