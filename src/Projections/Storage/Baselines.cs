using Npgsql;
using NpgsqlTypes;

namespace Audit.Projections.Storage;

/// <summary>
/// What PostgreSQL does without us, for the benchmarks' side-by-side ratios: raw COPY BINARY of event
/// rows into a table without keys or indexes, a raw ordered read, table sizes, and the bench schema.
/// </summary>
public static class Baselines
{
    public sealed record RawRow(long Seq, string Type, short Version, long TsNs, string Payload);

    public static async Task CreateSchemaAsync(string connectionString, string schema, CancellationToken ct)
    {
        await using var ds = NpgsqlDataSource.Create(connectionString);
        await using var cmd = ds.CreateCommand($"create schema \"{schema}\"");
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Drops a bench schema. Its projection leaves (one per run and generation) go first, each in a transaction
    /// of its own: one `drop schema ... cascade` locks every table and index at once, and the fuzz bench's
    /// thousands of runs ran out of the server's lock table (max_locks_per_transaction).
    /// </summary>
    public static async Task DropSchemaAsync(string connectionString, string schema, CancellationToken ct)
    {
        await using var ds = NpgsqlDataSource.Create(connectionString);
        var leaves = new List<string>();
        await using (var list = ds.CreateCommand(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relispartition and c.relkind = 'r'"))
        {
            list.Parameters.Add(new() { Value = schema });
            await using var r = await list.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                leaves.Add(r.GetString(0));
            }
        }

        foreach (var leaf in leaves)
        {
            await using var drop = ds.CreateCommand($"drop table if exists \"{schema}\".\"{leaf}\"");
            await drop.ExecuteNonQueryAsync(ct);
        }

        await using var cmd = ds.CreateCommand($"drop schema if exists \"{schema}\" cascade");
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public static async Task<string> ServerVersionAsync(NpgsqlDataSource ds, CancellationToken ct)
    {
        await using var cmd = ds.CreateCommand("show server_version");
        return (string)(await cmd.ExecuteScalarAsync(ct))!;
    }

    public static async Task CreateRawTableAsync(NpgsqlDataSource ds, CancellationToken ct)
    {
        await using var cmd = ds.CreateCommand("create table raw_events (run_id text, seq bigint, type text, version smallint, ts_ns bigint, recorded_at timestamptz, payload jsonb)");
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Indexes the raw table by (run_id, seq), as the events table is, so that its ordered read walks an index as ours does.</summary>
    public static async Task IndexRawTableAsync(NpgsqlDataSource ds, CancellationToken ct)
    {
        foreach (var sql in new[] { "create index if not exists ix_raw_events on raw_events (run_id, seq)", "vacuum analyze raw_events" })
        {
            await using var cmd = ds.CreateCommand(sql);
            cmd.CommandTimeout = 0;
            await cmd.ExecuteNonQueryAsync(ct);
        }
    }

    public static async Task DropRawTableAsync(NpgsqlDataSource ds, CancellationToken ct)
    {
        await using var cmd = ds.CreateCommand("drop table if exists raw_events");
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public static async Task RawCopyAsync(NpgsqlDataSource ds, string runId, IReadOnlyList<RawRow> rows, DateTimeOffset recordedAt, CancellationToken ct)
    {
        await using var conn = await ds.OpenConnectionAsync(ct);
        await using var copy = await conn.BeginBinaryImportAsync("copy raw_events from stdin (format binary)", ct);
        foreach (var r in rows)
        {
            await copy.StartRowAsync(ct);
            await copy.WriteAsync(runId, NpgsqlDbType.Text, ct);
            await copy.WriteAsync(r.Seq, NpgsqlDbType.Bigint, ct);
            await copy.WriteAsync(r.Type, NpgsqlDbType.Text, ct);
            await copy.WriteAsync(r.Version, NpgsqlDbType.Smallint, ct);
            await copy.WriteAsync(r.TsNs, NpgsqlDbType.Bigint, ct);
            await copy.WriteAsync(recordedAt, NpgsqlDbType.TimestampTz, ct);
            await copy.WriteAsync(r.Payload, NpgsqlDbType.Jsonb, ct);
        }

        await copy.CompleteAsync(ct);
    }

    /// <summary>Reads a run's events in seq order as stored (payload text, or a compact record's bytes), without deserializing: the floor for a rebuild.</summary>
    /// <param name="table">events, or raw_events (the peers bench indexes it on (run_id, seq) first).</param>
    public static async Task<long> RawOrderedReadAsync(NpgsqlDataSource ds, string runId, CancellationToken ct, string table = "events")
    {
        if (table is not ("events" or "raw_events"))
        {
            throw new ArgumentException($"not an event table: {table}", nameof(table));
        }

        await using var conn = await ds.OpenConnectionAsync(ct);
        var record = table == "events" ? "case when payload is null then fold end" : "null::bytea";
        await using var cmd = new NpgsqlCommand($"select seq, type::text, version, ts_ns, payload::text, {record} from {table} where run_id = $1 order by seq", conn);
        cmd.Parameters.Add(new() { Value = runId });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        long n = 0;
        while (await r.ReadAsync(ct))
        {
            _ = r.GetInt64(0);
            _ = r.GetString(1);
            _ = r.IsDBNull(4) ? r.GetFieldValue<byte[]>(5).Length : r.GetString(4).Length;
            n++;
        }

        return n;
    }

    /// <summary>(all tables and indexes, events, projection rows) in bytes; the spare leaves (ADR 0005) count as projection rows.</summary>
    public static async Task<(long Total, long Events, long Projections)> SizesAsync(NpgsqlDataSource ds, CancellationToken ct)
    {
        await using var cmd = ds.CreateCommand($"""
            with p as (select ((select coalesce(sum(pg_total_relation_size(relid)), 0) from pg_partition_tree('projection_rows'))
                            + (select coalesce(sum(pg_total_relation_size(s.oid)), 0) from ({Audit.Projections.Temporal.Partitions.SparesSql}) s))::bigint as bytes)
            select pg_total_relation_size('events') + p.bytes + pg_total_relation_size('runs') + pg_total_relation_size('explanation_steps')
                 + pg_total_relation_size('batches') + pg_total_relation_size('projection_checkpoints') + pg_total_relation_size('engine_checkpoints'),
                   pg_total_relation_size('events'), p.bytes
            from p
            """);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        return (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2));
    }

    /// <summary>What autovacuum would do after a bulk load, done now (statistics, no dead rows, hint bits set), then a checkpoint.</summary>
    public static async Task VacuumAnalyzeAsync(NpgsqlDataSource ds, CancellationToken ct)
    {
        foreach (var sql in new[] { "vacuum analyze events", "vacuum analyze projection_rows", "checkpoint" })
        {
            await using var cmd = ds.CreateCommand(sql);
            cmd.CommandTimeout = 0;
            try
            {
                await cmd.ExecuteNonQueryAsync(ct);
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.InsufficientPrivilege && sql == "checkpoint")
            {
                // A role without pg_checkpoint (--db on a shared server): the checkpointer flushes in its own time.
            }
        }
    }
}
