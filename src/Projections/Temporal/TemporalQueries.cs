using Npgsql;

namespace Audit.Projections.Temporal;

/// <summary>Indexed reads of the active generation: no replay.</summary>
public sealed class TemporalQueries(NpgsqlDataSource dataSource)
{
    private const string Columns = "projection, lo, hi, from_seq, to_seq, data::text";

    /// <summary>The active generation, inside each query: one round trip.</summary>
    private const string Gen = "(select coalesce((select active_gen from projection_generations where run_id = $1), 1))";

    /// <summary>A closed row's box in the time-travel index (migrations 0005, 0009): x the span, y the seqs; the exact half-open bounds are rechecked beside it.</summary>
    private const string Span = "projection_span(lo, hi, from_seq, to_seq)";

    /// <summary>The rows of the run's active generation.</summary>
    private const string Of = "run_id = $1 and gen = " + Gen;

    /// <summary>
    /// The rows of the small projections (memslots, VMAs, attributes, shareability) through their partial
    /// btree, by name: the coarse stage-2 cells (ADR 0015) share that index, and 18,000 of them were read
    /// at each map request of the 10M-event run (26-600 ms) while the names came as a join. As an array
    /// the names lead the index scan.
    /// </summary>
    private const string Small = $"projection <> '{RunProjections.Stage2Name}' and projection = any(array(select c.projection from projection_checkpoints c where c.run_id = $1 and c.gen = {Gen} and c.projection <> '{RunProjections.Stage2Name}' and not starts_with(c.projection, '{Stage2Cells.Prefix}')))";

    /// <summary>A closed row that held at seq $2.</summary>
    private const string ClosedAt = "to_seq is not null and from_seq <= $2 and to_seq > $2";

    /// <summary>
    /// Every row that holds at <paramref name="at"/>, ordered by projection (ordinal) and address;
    /// with a gpa range, only the rows of the gpa projections (stage-2, memslots, attributes) that
    /// overlap it, and every row of the others. One statement: the closed stage-2 rows through the
    /// box index; the open ones by address with a range (from the one row that can cover its start,
    /// since open rows never overlap) or by from_seq without; the few rows of the other projections
    /// through their partial btree (migration 0006). The rows are ordered here: a server sort of
    /// 10,000 rows cost more than the scan.
    /// </summary>
    public async Task<IReadOnlyList<TemporalRow>> RowsAtAsync(string runId, long at, ulong? lo = null, ulong? hi = null, CancellationToken ct = default)
    {
        const string stage2 = $"{Of} and projection = '{RunProjections.Stage2Name}'";
        var closed = lo is not null
            ? $"{Span} && box(point($3::float8, $2::float8), point($4::float8, $2::float8)) and lo < $4 and hi > $3"
            : $"{Span} && box(point('-infinity'::float8, $2::float8), point('infinity'::float8, $2::float8))";
        // With a range the address leads, whatever the statistics say: from_seq + 0 keeps the from_seq index out of it
        // (a leaf without statistics had the planner filter all 1.39M open rows of the 10M run that way).
        var open = lo is not null
            ? $"from_seq + 0 <= $2 and lo < $4 and hi > $3 and lo >= coalesce((select max(lo) from projection_rows where {stage2} and to_seq is null and lo <= $3), $3)"
            : "from_seq <= $2";
        var small = lo is not null
            ? $"{Small} and (lo < $4 and hi > $3 or not (projection = '{RunProjections.AttributesName}' or projection like 'memslots/%'))"
            : Small;
        var rows = await QueryAsync($"""
            select {Columns} from projection_rows where {stage2} and {closed} and {ClosedAt}
            union all
            select {Columns} from projection_rows where {stage2} and to_seq is null and {open}
            union all
            select {Columns} from projection_rows where {Of} and {small} and from_seq <= $2 and (to_seq is null or to_seq > $2)
            """, [runId, at, lo is { } l ? (long)l : 0L, hi is { } h ? (long)Math.Min(h, long.MaxValue) : long.MaxValue], ct);
        rows.Sort(ByProjectionThenAddress);
        return rows;
    }

    /// <summary>
    /// The stage-2 blocks holding at <paramref name="at"/> inside each window, at the window's resolution:
    /// one span per pixel (Cell bytes from the window's Lo) holding any mapped block, clipped to the pixel,
    /// of the kind drawn for the kinds there (<see cref="Stage2Cells.Drawn"/>: the least cacheable), with
    /// how many blocks start in it and the latest seq one of them opened at. A block wider than a pixel
    /// counts in each pixel it covers (its inner pixels as one span: no other block can be there). The
    /// answer is O(pixels), not O(rows): the rows never leave the server.
    /// A window with CellBits (<see cref="Stage2Cells.Snap"/>) is answered from the coarse cells instead of
    /// the rows, when the run has them: its pixels are whole cells, so the kinds are the same, and the
    /// count is of cells. A row's kind is the part of its data that names granule, type, IPAT, permissions
    /// and policy (<see cref="Stage2Text.ReadKind"/>); what follows differs per decision.
    /// </summary>
    /// <remarks>
    /// Every answer comes from one batch (on a loaded host each round trip waited for a core): the rows
    /// of the other projections (memslots, VMAs, attributes, shareability; a few, through their partial
    /// btree), every memslot span the run ever had (<see cref="SpansEverAsync"/>), then the spans. Custom plans
    /// and no JIT: the generic plan's estimates crossed jit_above_cost, and PostgreSQL compiled it before
    /// its first row, 40-600 ms on the 2M-event run for a 64 MiB window whose rows take 1 ms (the custom
    /// plan 1-4 ms in all, planning included; a larger variant of this query spent 2.5-3 s compiling).
    /// </remarks>
    public async Task<MapRows> MapAtAsync(string runId, long at, IReadOnlyList<MapWindow> windows, CancellationToken ct = default)
    {
        const string stage2 = $"{Of} and projection = '{RunProjections.Stage2Name}'";
        // Only mapped rows are drawn: a compact mapping starts with its granule (ADR 0017) or, as ADR 0016 wrote it, "mapped";
        // a gap with "gap". A row written with its kind elsewhere is left to the caller to judge by its kind text.
        const string mapped = "(starts_with(data::text, '[\"mapped\"') or starts_with(data::text, '{\"kind\":\"mapped\"') or not (starts_with(data::text, '[\"') or starts_with(data::text, '{\"kind\":\"')))";
        // A row's kind (Stage2Text): the compact array up to its object of the rest, or the object form up to "decidedAt".
        // split_part scans the text once (strpos and left took twice as long) and gives the whole text when the field is missing.
        const string kind = "case when starts_with(data::text, '[') then rtrim(split_part(data::text, ',{', 1), ']') else split_part(data::text, ',\"decidedAt\"', 1) end";
        // The cells of a level through the small projections' btree, once for all windows of that level (inlined, the scan ran once a window:
        // 3 x 4,250 versions, 29 ms on the 10M run): a cell has few versions, and the box index would visit every stage-2 row in view.
        // A cell row spans one cell or more (neighbours of the same kinds share one), each in exactly one pixel: split by pixel as the stage-2 rows are.
        // The bounds on projection repeat the cells index's predicate (migration 0017): the level's name is computed, so the planner could not infer them.
        const string cells = $"{Of} and projection <> '{RunProjections.Stage2Name}' and projection >= '{Stage2Cells.Prefix}' and projection < '{Stage2Cells.PrefixEnd}' and projection = '{Stage2Cells.Prefix}' || l.bits and from_seq <= $2 and (to_seq is null or to_seq > $2)";
        await using var conn = await dataSource.OpenConnectionAsync(ct);

        // SET LOCAL holds only inside a transaction block: in a bare batch the server ignored it with a
        // warning (14,883 of them in one bench's log) and this query kept the defaults, JIT included.
        await using var tx = await conn.BeginTransactionAsync(ct);
        await using var batch = new NpgsqlBatch(conn, tx);
        batch.BatchCommands.Add(new NpgsqlBatchCommand("set local plan_cache_mode = force_custom_plan"));
        batch.BatchCommands.Add(new NpgsqlBatchCommand("set local jit = off"));
        var small = new NpgsqlBatchCommand(
            $"select {Columns} from projection_rows where {Of} and {Small} and from_seq <= $2 and (to_seq is null or to_seq > $2)");
        small.Parameters.Add(new NpgsqlParameter { Value = runId });
        small.Parameters.Add(new NpgsqlParameter { Value = at });
        batch.BatchCommands.Add(small);
        var slots = new NpgsqlBatchCommand(SpansEverSql);
        slots.Parameters.Add(new NpgsqlParameter { Value = runId });
        slots.Parameters.Add(new NpgsqlParameter { Value = "memslots/" });
        batch.BatchCommands.Add(slots);
        // The rows are grouped by pixel and kind text in memory: with the default 4 MB the server sorted 31,000 of them through a temporary file.
        batch.BatchCommands.Add(new NpgsqlBatchCommand("set local work_mem = '64MB'"));
        var query = new NpgsqlBatchCommand($"""
            with w as (select * from unnest($3::bigint[], $4::bigint[], $5::bigint[], $6::int[]) with ordinality as w(lo, hi, cell, bits, i)),
            has as (select exists (select from projection_checkpoints where run_id = $1 and gen = {Gen} and projection = '{Stage2Cells.Name(Stage2Cells.LevelBits[0])}') as cells),
            ew as (select w.* from w, has where w.bits = 0 or not has.cells),
            cw as (select w.* from w, has where w.bits > 0 and has.cells),
            cr as materialized (
                select l.bits, p.* from (select distinct bits from cw) l
                cross join lateral (select lo, hi, from_seq, (data->>'kinds')::bigint as kinds from projection_rows where {cells}) p),
            r as (
                select ew.i, ew.lo as wlo, ew.hi as whi, ew.cell, p.lo, p.hi, p.from_seq, p.kind, null::bigint as kinds, 0::bigint as size
                from ew cross join lateral (
                    select lo, hi, from_seq, {kind} as kind from projection_rows
                    where {stage2} and {Span} && box(point(ew.lo::float8, $2::float8), point(ew.hi::float8, $2::float8))
                      and lo < ew.hi and hi > ew.lo and {ClosedAt} and {mapped}
                    union all
                    select lo, hi, from_seq, {kind} from projection_rows
                    where {stage2} and to_seq is null and from_seq + 0 <= $2 and lo < ew.hi and hi > ew.lo and {mapped}
                      and lo >= coalesce((select max(lo) from projection_rows where {stage2} and to_seq is null and lo <= ew.lo), ew.lo)) p
                union all
                select cw.i, cw.lo, cw.hi, cw.cell, p.lo, p.hi, p.from_seq, null, p.kinds, 1::bigint << cw.bits
                from cw join cr p on p.bits = cw.bits and p.lo < cw.hi and p.hi > cw.lo),
            x as (
                select r.i, g.px, r.kind, r.kinds, r.size, r.from_seq, g.first,
                    greatest(r.lo, r.wlo + g.px * r.cell) as lo, least(r.hi, r.wlo + (g.last + 1) * r.cell) as hi
                from (select r.*, (greatest(lo, wlo) - wlo) / cell as px0, (least(hi, whi) - 1 - wlo) / cell as px1 from r) r
                cross join lateral (values (r.px0, r.px0, true), (r.px0 + 1, r.px1 - 1, false), (r.px1, r.px1, false)) as g(px, last, first)
                where g.first or (g.px > r.px0 and g.px <= g.last)),
            k as (
                select i, px, kind, sum(hi - lo) as bytes, min(lo) as lo, max(hi) as hi, max(from_seq) as last, bit_or(kinds) as kinds, max(size) as size,
                    coalesce(sum((hi - lo) / nullif(size, 0)), count(*) filter (where first)) as n
                from x group by i, px, kind)
            select min(lo) over p, max(hi) over p, (sum(n) over p)::int, max(last) over p, kind, i, px, kinds, bytes, size
            from k window p as (partition by i, px)
            order by 6, 7, 9 desc
            """);
        query.Parameters.Add(new NpgsqlParameter { Value = runId });
        query.Parameters.Add(new NpgsqlParameter { Value = at });
        query.Parameters.Add(new NpgsqlParameter { Value = windows.Select(w => (long)w.Lo).ToArray() });
        query.Parameters.Add(new NpgsqlParameter { Value = windows.Select(w => (long)Math.Min(w.Hi, long.MaxValue)).ToArray() });
        query.Parameters.Add(new NpgsqlParameter { Value = windows.Select(w => (long)Math.Max(w.Cell, 1)).ToArray() });
        query.Parameters.Add(new NpgsqlParameter { Value = windows.Select(w => w.CellBits).ToArray() });
        batch.BatchCommands.Add(query);
        await batch.PrepareAsync(ct);
        var result = await ReadMapAsync(batch, ct);
        await tx.CommitAsync(ct);
        return result;
    }

    private static async Task<MapRows> ReadMapAsync(NpgsqlBatch batch, CancellationToken ct)
    {
        var rows = new List<Stage2Span>();
        await using var r = await batch.ExecuteReaderAsync(ct);
        var smallRows = new List<TemporalRow>();
        while (await r.ReadAsync(ct))
        {
            smallRows.Add(Row(r));
        }

        smallRows.Sort(ByProjectionThenAddress);
        await r.NextResultAsync(ct);
        var slotSpans = new List<(long, long)>();
        while (await r.ReadAsync(ct))
        {
            slotSpans.Add((r.GetInt64(0), r.GetInt64(1)));
        }

        await r.NextResultAsync(ct);
        (long I, long Px) last = (-1, -1);
        var kinds = new Dictionary<string, int>(StringComparer.Ordinal);
        while (await r.ReadAsync(ct))
        {
            // A pixel's rows come with its kinds, the most bytes first; the span takes the kind drawn for them all.
            var pixel = (r.GetInt64(5), r.GetInt64(6));
            Stage2Span span = r.IsDBNull(7)
                ? new(r.GetInt64(0), r.GetInt64(1), r.GetInt32(2), r.GetInt64(3), r.GetString(4), BitOf(r.GetString(4), kinds))
                : new(r.GetInt64(0), r.GetInt64(1), r.GetInt32(2), r.GetInt64(3), "", Stage2Cells.Drawn(r.GetInt64(7)), (ulong)r.GetInt64(9));
            if (pixel != last)
            {
                rows.Add(span);
                last = pixel;
            }
            else if (span.Bit >= 0 && (rows[^1].Bit < 0 || Stage2Cells.Rank(span.Bit) < Stage2Cells.Rank(rows[^1].Bit)))
            {
                rows[^1] = span;
            }
        }

        return new MapRows(smallRows, slotSpans, rows);
    }

    /// <summary>The kind bit of a row's kind text (-1 when it is not a mapping), read once per text.</summary>
    private static int BitOf(string kind, Dictionary<string, int> known)
    {
        if (!known.TryGetValue(kind, out var bit))
        {
            var d = Stage2Text.ReadKind(kind);
            bit = known[kind] = d is { IsMapped: true, MemType: { } t } ? Stage2Cells.Bit(t, d.Ipat) : -1;
        }

        return bit;
    }

    private static int ByProjectionThenAddress(TemporalRow a, TemporalRow b) =>
        string.CompareOrdinal(a.Projection, b.Projection) is var c and not 0 ? c : a.Lo.CompareTo(b.Lo);

    /// <summary>The row of one projection covering an address at a seq, if any: one box probe for the closed rows, one btree probe for the open ones.</summary>
    public async Task<TemporalRow?> RowAtAsync(string runId, string projection, ulong address, long at, CancellationToken ct = default)
    {
        var rows = await QueryAsync($"""
            select {Columns} from projection_rows
            where {Of} and projection = $3 and {Span} @> box(point($4::float8, $2::float8), point($4::float8, $2::float8))
              and lo <= $4 and hi > $4 and {ClosedAt}
            union all
            select * from (
                select {Columns} from projection_rows where {Of} and projection = $3 and to_seq is null and lo <= $4
                order by lo desc limit 1) o
            where o.hi > $4 and o.from_seq <= $2
            """, [runId, at, projection, (long)address], ct);
        return rows.Count > 0 ? rows[0] : null;
    }

    /// <summary>Every row of the given projections whose span ever covered an address, oldest first.</summary>
    public async Task<IReadOnlyList<TemporalRow>> RowsCoveringAsync(string runId, IReadOnlyList<(string Projection, ulong Address)> probes, CancellationToken ct = default)
    {
        return await QueryAsync($"""
            select p.projection, p.lo, p.hi, p.from_seq, p.to_seq, p.data::text from projection_rows p
            join unnest($2::text[], $3::bigint[]) as q(projection, address)
              on projection_span(p.lo, p.hi, p.from_seq, p.to_seq) && box(point(q.address::float8, '-infinity'::float8), point(q.address::float8, 'infinity'::float8))
              and p.projection = q.projection and p.lo <= q.address and p.hi > q.address
            where p.run_id = $1 and p.gen = {Gen} and p.to_seq is not null
            union all
            select o.* from unnest($2::text[], $3::bigint[]) as q(projection, address)
            cross join lateral (
                select {Columns} from projection_rows where {Of} and projection = q.projection and to_seq is null and lo <= q.address
                order by lo desc limit 1) o
            where o.hi > q.address
            order by 4, 1, 2
            """, [runId, probes.Select(p => p.Projection).ToArray(), probes.Select(p => (long)p.Address).ToArray()], ct);
    }

    /// <summary>
    /// Every distinct span the rows of the projections whose name starts with <paramref name="prefix"/>
    /// ever had in the active generation: for the memslots, where the guest's address space is populated
    /// at some point of the run. A handful of rows, through the small projections' partial btree (its
    /// predicate is repeated here: with `like` the server scanned all 67,000 rows of a 200,000-event run),
    /// by the names the run's checkpoints give (the coarse stage-2 cells share that btree, ADR 0015).
    /// </summary>
    private const string SpansEverSql = $"select distinct lo, hi from projection_rows where {Of} and projection <> '{RunProjections.Stage2Name}' and projection = any(array(select c.projection from projection_checkpoints c where c.run_id = $1 and c.gen = {Gen} and starts_with(c.projection, $2))) order by lo";

    public async Task<IReadOnlyList<(long Lo, long Hi)>> SpansEverAsync(string runId, string prefix, CancellationToken ct = default)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand(
            SpansEverSql, conn);
        cmd.Parameters.Add(new() { Value = runId });
        cmd.Parameters.Add(new() { Value = prefix });
        var spans = new List<(long, long)>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            spans.Add((r.GetInt64(0), r.GetInt64(1)));
        }

        return spans;
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

    /// <summary>
    /// Runs a query prepared on the connection. The server plans it per call (a custom plan: run_id prunes
    /// the other runs' leaves at plan time). A generic plan was asked for here once, but by a SET LOCAL
    /// outside a transaction block, which the server ignores: every figure measured with it (pointQueryP99Ms
    /// 0.55 ms on 10M events, 2026-12-04 06:40) is of custom plans. It stays so on purpose: a generic plan
    /// over the partitioned table locks every run's leaf at each execution on PostgreSQL 15.
    /// </summary>
    private async Task<List<TemporalRow>> QueryAsync(string sql, object[] args, CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var batch = new NpgsqlBatch(conn);
        var query = new NpgsqlBatchCommand(sql);
        foreach (var a in args)
        {
            query.Parameters.Add(new NpgsqlParameter { Value = a });
        }

        batch.BatchCommands.Add(query);
        await batch.PrepareAsync(ct);
        var rows = new List<TemporalRow>();
        await using var r = await batch.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            rows.Add(Row(r));
        }

        return rows;
    }

    /// <summary>A row read in the order of <see cref="Columns"/>.</summary>
    private static TemporalRow Row(NpgsqlDataReader r) => new(
        r.GetString(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.IsDBNull(4) ? null : r.GetInt64(4), r.GetString(5));
}

/// <summary>A part of the guest address space drawn Cell bytes to a pixel; with CellBits, from the coarse cells of that size (<see cref="Stage2Cells.Snap"/>).</summary>
public readonly record struct MapWindow(ulong Lo, ulong Hi, ulong Cell, int CellBits = 0);

/// <summary>
/// Stage-2 blocks drawn as one: [Lo, Hi), how many rows, the latest seq one opened at, the kind (the row data
/// up to its per-decision fields) and its bit (<see cref="Stage2Cells.Bit"/>). From the coarse cells: no kind
/// text, the count is of cells of CellSize bytes, and the seq is the latest change of their sets of kinds.
/// </summary>
public sealed record Stage2Span(long Lo, long Hi, int Count, long LastSeq, string Kind, int Bit, ulong CellSize = 0);

/// <summary>What the map at a point needs: the rows of the small projections, every memslot span ever, and the stage-2 spans of its windows.</summary>
public sealed record MapRows(IReadOnlyList<TemporalRow> Small, IReadOnlyList<(long Lo, long Hi)> MemslotSpansEver, IReadOnlyList<Stage2Span> Stage2);
