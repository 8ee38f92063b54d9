using Npgsql;

namespace Audit.Projections.Temporal;

/// <summary>Indexed reads of the active generation: no replay.</summary>
public sealed class TemporalQueries(NpgsqlDataSource dataSource)
{
    private const string Columns = "projection, lo, hi, from_seq, to_seq, from_ts, to_ts, data::text";

    /// <summary>The active generation, inside each query: one round trip.</summary>
    private const string Gen = "(select coalesce((select active_gen from projection_generations where run_id = $1), 1))";

    /// <summary>A row's key in the index (migration 0003); the exact conditions beside it remove hash collisions.</summary>
    private const string Key = "projection_key(run_id, gen, projection)";

    /// <summary>
    /// Every row that holds at <paramref name="at"/>; with a gpa range, only the rows of the gpa
    /// projections (stage-2, memslots, attributes) that overlap it. One statement: a branch per
    /// projection with an equality on it, so the GiST index serves the span and the seq together.
    /// </summary>
    public async Task<IReadOnlyList<TemporalRow>> RowsAtAsync(string runId, long at, ulong? lo = null, ulong? hi = null, CancellationToken ct = default)
    {
        var names = await ProjectionNamesAsync(runId, ct);
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand { Connection = conn };
        cmd.Parameters.Add(new() { Value = runId });
        cmd.Parameters.Add(new() { Value = at });
        cmd.Parameters.Add(new() { Value = lo is { } l ? (long)l : 0L });
        cmd.Parameters.Add(new() { Value = hi is { } h ? (long)Math.Min(h, long.MaxValue) : long.MaxValue });
        var branches = new List<string>();
        foreach (var name in names)
        {
            cmd.Parameters.Add(new() { Value = name });
            var gpaProjection = name is RunProjections.Stage2Name or RunProjections.AttributesName || name.StartsWith("memslots/", StringComparison.Ordinal);
            var p = cmd.Parameters.Count;
            var span = lo is not null && gpaProjection ? " and int8range(lo, hi) && int8range($3, $4)" : "";
            branches.Add($"(select {Columns} from projection_rows where {Key} = projection_key($1, {Gen}, ${p}) and run_id = $1 and gen = {Gen} and projection = ${p} and int8range(from_seq, to_seq) @> $2::bigint{span})");
        }

        if (branches.Count == 0)
        {
            return [];
        }

        cmd.CommandText = string.Join("\nunion all\n", branches) + "\norder by projection, lo";
        return await ReadAll(cmd, ct);
    }

    /// <summary>The row of one projection covering an address at a seq, if any: one GiST probe.</summary>
    public async Task<TemporalRow?> RowAtAsync(string runId, string projection, ulong address, long at, CancellationToken ct = default)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand($"""
            select {Columns} from projection_rows
            where {Key} = projection_key($1, {Gen}, $2)
              and run_id = $1 and gen = {Gen} and projection = $2 and int8range(lo, hi) @> $3::bigint and int8range(from_seq, to_seq) @> $4::bigint
            """, conn);
        cmd.Parameters.Add(new() { Value = runId });
        cmd.Parameters.Add(new() { Value = projection });
        cmd.Parameters.Add(new() { Value = (long)address });
        cmd.Parameters.Add(new() { Value = at });
        var rows = await ReadAll(cmd, ct);
        return rows.Count > 0 ? rows[0] : null;
    }

    /// <summary>Every row of the given projections whose span ever covered an address, oldest first.</summary>
    public async Task<IReadOnlyList<TemporalRow>> RowsCoveringAsync(string runId, IReadOnlyList<(string Projection, ulong Address)> probes, CancellationToken ct = default)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand($"""
            select p.projection, p.lo, p.hi, p.from_seq, p.to_seq, p.from_ts, p.to_ts, p.data::text from projection_rows p
            join unnest($2::text[], $3::bigint[]) as q(projection, address)
              on projection_key(p.run_id, p.gen, p.projection) = projection_key($1, {Gen}, q.projection)
              and p.projection = q.projection and int8range(p.lo, p.hi) @> q.address
            where p.run_id = $1 and p.gen = {Gen}
            order by p.from_seq, p.projection, p.lo
            """, conn);
        cmd.Parameters.Add(new() { Value = runId });
        cmd.Parameters.Add(new() { Value = probes.Select(p => p.Projection).ToArray() });
        cmd.Parameters.Add(new() { Value = probes.Select(p => (long)p.Address).ToArray() });
        return await ReadAll(cmd, ct);
    }

    /// <summary>The run's projections, from their checkpoints (a handful of rows).</summary>
    public async Task<IReadOnlyList<string>> ProjectionNamesAsync(string runId, CancellationToken ct = default)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand($"select projection from projection_checkpoints where run_id = $1 and gen = {Gen} order by projection", conn);
        cmd.Parameters.Add(new() { Value = runId });
        var names = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            names.Add(r.GetString(0));
        }

        return names;
    }

    private static async Task<List<TemporalRow>> ReadAll(NpgsqlCommand cmd, CancellationToken ct)
    {
        var rows = new List<TemporalRow>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            rows.Add(new TemporalRow(
                r.GetString(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.IsDBNull(4) ? null : r.GetInt64(4),
                r.IsDBNull(5) ? null : r.GetInt64(5), r.IsDBNull(6) ? null : r.GetInt64(6), r.GetString(7)));
        }

        return rows;
    }
}
