using System.Collections.Concurrent;
using Audit.Projections.Storage;
using Npgsql;
using NpgsqlTypes;

namespace Audit.Projections.Temporal;

/// <summary>
/// Writes and reads the temporal projections. Inline: the rows an append changes are written in
/// the append's own transaction, with the projections' checkpoints. Views of the rows that hold
/// are cached per run between appends, but only once the append that changed them committed.
/// </summary>
public sealed class ProjectionStore(NpgsqlDataSource dataSource) : IInlineProjection
{
    private readonly ConcurrentDictionary<string, (int Gen, long Seq, RunProjections View)> _cache = new();
    private readonly ConcurrentDictionary<string, (int Gen, long Seq, RunProjections View)> _pending = new();

    public NpgsqlDataSource DataSource => dataSource;

    public async Task ApplyAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string runId, IReadOnlyList<StoredEvent> appended, CancellationToken ct)
    {
        if (appended.Count == 0)
        {
            return;
        }

        var gen = await ActiveGenerationAsync(conn, tx, runId, ct, create: true);
        var fromSeq = appended[0].Seq;
        RunProjections view;
        if (_cache.TryRemove(runId, out var cached) && cached.Gen == gen && cached.Seq == fromSeq - 1)
        {
            view = cached.View;
        }
        else
        {
            view = await LoadOpenAsync(conn, tx, runId, gen, ct);
        }

        foreach (var e in appended)
        {
            view.Apply(e.Recorded);
        }

        await WriteAsync(conn, tx, runId, gen, view.Log, ct);
        view.Log.Clear();
        await CheckpointAsync(conn, tx, runId, gen, appended[^1].Seq, view.Names(), ct);
        _pending[runId] = (gen, appended[^1].Seq, view);
    }

    public void Completed(string runId, bool committed)
    {
        if (_pending.TryRemove(runId, out var p) && committed)
        {
            _cache[runId] = p;
        }
    }

    /// <summary>The generation readers use (1 until a rebuild swapped another in); writers create the row.</summary>
    public static async Task<int> ActiveGenerationAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string runId, CancellationToken ct, bool create = false)
    {
        if (create)
        {
            await using var ins = new NpgsqlCommand("insert into projection_generations (run_id, active_gen) values ($1, 1) on conflict (run_id) do nothing", conn, tx);
            ins.Parameters.Add(new() { Value = runId });
            await ins.ExecuteNonQueryAsync(ct);
        }

        await using var cmd = new NpgsqlCommand("select coalesce((select active_gen from projection_generations where run_id = $1), 1)", conn, tx);
        cmd.Parameters.Add(new() { Value = runId });
        return (int)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>The rows of a generation that still hold, folded back into views.</summary>
    public static async Task<RunProjections> LoadOpenAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string runId, int gen, CancellationToken ct)
    {
        var view = new RunProjections();
        await using var cmd = new NpgsqlCommand(
            "select projection, lo, hi, from_seq, from_ts, data::text from projection_rows where run_id = $1 and gen = $2 and to_seq is null", conn, tx);
        cmd.Parameters.Add(new() { Value = runId });
        cmd.Parameters.Add(new() { Value = gen });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            view.Load(new TemporalRow(r.GetString(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), null, r.IsDBNull(4) ? null : r.GetInt64(4), null, r.GetString(5)));
        }

        return view;
    }

    /// <summary>Writes a batch's row changes: new rows by COPY, closed rows by one bulk update.</summary>
    public static async Task WriteAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string runId, int gen, ChangeLog log, CancellationToken ct)
    {
        if (log.Closed.Count > 0)
        {
            await using var cmd = new NpgsqlCommand("""
                update projection_rows p set to_seq = c.to_seq, to_ts = c.to_ts
                from unnest($3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) as c(projection, lo, from_seq, to_seq, to_ts)
                where p.run_id = $1 and p.gen = $2 and p.projection = c.projection and p.lo = c.lo and p.from_seq = c.from_seq
                """, conn, tx);
            cmd.Parameters.Add(new() { Value = runId });
            cmd.Parameters.Add(new() { Value = gen });
            cmd.Parameters.Add(new() { Value = log.Closed.Select(c => c.Projection).ToArray() });
            cmd.Parameters.Add(new() { Value = log.Closed.Select(c => c.Lo).ToArray() });
            cmd.Parameters.Add(new() { Value = log.Closed.Select(c => c.FromSeq).ToArray() });
            cmd.Parameters.Add(new() { Value = log.Closed.Select(c => c.ToSeq).ToArray() });
            cmd.Parameters.Add(new() { Value = log.Closed.Select(c => c.ToTs).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
            await cmd.ExecuteNonQueryAsync(ct);
        }

        await using var copy = await conn.BeginBinaryImportAsync(
            "copy projection_rows (run_id, gen, projection, lo, hi, from_seq, to_seq, from_ts, to_ts, data) from stdin (format binary)", ct);
        foreach (var row in log.Rows)
        {
            await copy.StartRowAsync(ct);
            await copy.WriteAsync(runId, NpgsqlDbType.Text, ct);
            await copy.WriteAsync(gen, NpgsqlDbType.Integer, ct);
            await copy.WriteAsync(row.Projection, NpgsqlDbType.Text, ct);
            await copy.WriteAsync(row.Lo, NpgsqlDbType.Bigint, ct);
            await copy.WriteAsync(row.Hi, NpgsqlDbType.Bigint, ct);
            await copy.WriteAsync(row.FromSeq, NpgsqlDbType.Bigint, ct);
            await WriteNullable(copy, row.ToSeq, ct);
            await WriteNullable(copy, row.FromTs, ct);
            await WriteNullable(copy, row.ToTs, ct);
            await copy.WriteAsync(row.Data, NpgsqlDbType.Jsonb, ct);
        }

        await copy.CompleteAsync(ct);
    }

    /// <summary>One checkpoint per projection of the run (stage2, vmas, attributes, memslots/N, gmem/FD).</summary>
    public static async Task CheckpointAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string runId, int gen, long seq, IEnumerable<string> names, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("""
            insert into projection_checkpoints (run_id, projection, gen, seq)
            select $1, p, $2, $3 from unnest($4::text[]) as p
            on conflict (run_id, projection, gen) do update set seq = excluded.seq
            """, conn, tx);
        cmd.Parameters.Add(new() { Value = runId });
        cmd.Parameters.Add(new() { Value = gen });
        cmd.Parameters.Add(new() { Value = seq });
        cmd.Parameters.Add(new() { Value = names.ToArray() });
        await cmd.ExecuteNonQueryAsync(ct);
    }

    private static async Task WriteNullable(NpgsqlBinaryImporter copy, long? value, CancellationToken ct)
    {
        if (value is { } v)
        {
            await copy.WriteAsync(v, NpgsqlDbType.Bigint, ct);
        }
        else
        {
            await copy.WriteNullAsync(ct);
        }
    }
}
