using Audit.Domain.Events;
using Audit.Projections.Serialization;
using Npgsql;

namespace Audit.Projections.Timeline;

/// <summary>One slice of a run's timeline: how many events fell in it, and how many of each kind worth a marker.</summary>
public sealed record DensityBucket(
    int Index, long FromSeq, long ToSeq, long? FromTsNs, long? ToTsNs, long Events,
    long MemslotChanges, long Unmaps, long MemoryFaultExits, long Divergences, long Errors);

/// <summary>
/// A run's events counted into equal slices of seq or of time, for the timeline of the web UI. One scan
/// of the run's events: only the outcomes of decisions are read from the payload (errors, memory-fault exits).
/// </summary>
public sealed class EventDensity(NpgsqlDataSource dataSource)
{
    /// <summary>Whether a fault_resolved's outcome is one of these: its record code, or its name in a version-1 jsonb payload.</summary>
    private static string OutcomeIn(params FaultOutcome[] outcomes) =>
        $"(case when payload is null then get_byte(fold, 2) in ({string.Join(", ", outcomes.Select(o => RecordCodes.Outcome.Code(o)))}) "
        + $"else payload->>'outcome' in ({string.Join(", ", outcomes.Select(o => $"'{KernelNames.Outcome.Write(o)}'"))}) end)";

    /// <summary>
    /// The kinds the timeline marks; an error is a refused fault or a memslot or ioctl the modelled kernel would refuse.
    /// A fault_resolved stored as a compact record (ADR 0013) has no payload: its outcome code is byte 2 of <c>fold</c>.
    /// </summary>
    private static readonly string MarkerCounts = $"""
        count(*) filter (where type = 'memslot_set') as memslots,
        count(*) filter (where type = 'stage2_unmapped') as unmaps,
        count(*) filter (where type = 'memory_fault_exit_observed' or (type = 'fault_resolved' and {OutcomeIn(FaultOutcome.MemoryFaultExit)})) as exits,
        count(*) filter (where type = 'divergence_found') as divergences,
        count(*) filter (where (type = 'fault_resolved' and {OutcomeIn(FaultOutcome.Error, FaultOutcome.Sigbus)})
                            or (type in ('memslot_decided', 'ioctl_decided') and payload->>'predictedErrno' <> '0')) as errors
        """;

    /// <summary>
    /// The markers their type alone names (nearly all of them unmaps): the predicate of <c>ix_events_marker_kinds</c>
    /// (migration 0018), which includes the type, so they are counted from the index alone.
    /// </summary>
    public const string KindMarkers = "type in ('memslot_set', 'stage2_unmapped', 'memory_fault_exit_observed', 'divergence_found')";

    /// <summary>
    /// The decisions a marker may count (a refusal, a memory-fault exit), whose outcome or errno is in the row:
    /// the predicate of <c>ix_events_marker_decisions</c> (migration 0018), written the same so the planner matches it.
    /// </summary>
    public static readonly string DecisionMarkers =
        "(type in ('memslot_decided', 'ioctl_decided') "
        + $"or (type = 'fault_resolved' and {OutcomeIn(FaultOutcome.MemoryFaultExit, FaultOutcome.Error, FaultOutcome.Sigbus)}))";

    /// <summary>
    /// Above this many events a run's seq slices are counted from its seqs, which have no gaps, and its
    /// markers through their own index, instead of reading every event: 6.7 s for the 10M-event bench run,
    /// beside the map the page draws at the same time.
    /// </summary>
    public const long ScanLimit = 1_000_000;

    /// <summary>
    /// Slices of equal seq width (<paramref name="byTime"/> false) or of equal time between the run's
    /// first and last timestamp (events without one are left out); empty slices are not returned.
    /// A run of more than <paramref name="scanLimit"/> events is sliced by seq without reading every event:
    /// a slice's times are then those of its first and last timed events (the least and greatest for a run
    /// whose times do not go back).
    /// </summary>
    public async Task<IReadOnlyList<DensityBucket>> BucketsAsync(string runId, long lastSeq, long? firstTsNs, long? lastTsNs, int buckets, bool byTime, CancellationToken ct = default, long scanLimit = ScanLimit)
    {
        // Integer slices of seq; time slices in float8 (256 ns steps at today's epoch: far below a bucket).
        var slice = byTime
            ? "least(floor((ts_ns - $3)::float8 * $2 / greatest($4 - $3 + 1, 1)::float8)::int, $2 - 1)"
            : "((seq - 1) * $2 / greatest($5, 1))::int";
        var timed = byTime ? " and ts_ns is not null" : "";
        var sql = !byTime && lastSeq > scanLimit
            ? SeqSlicesSql
            : $"select {slice} as b, count(*), min(seq), max(seq), min(ts_ns), max(ts_ns), {MarkerCounts} from events where run_id = $1{timed} group by 1 order by 1";
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        // The planner guesses millions of refusals where a run has dozens (it cannot see into the outcome test),
        // then compiled the query (JIT) and started workers for them: 650 of the slices' 820 ms on the 10M-event run.
        await using (var settings = new NpgsqlCommand("set local jit = off; set local max_parallel_workers_per_gather = 0", conn, tx))
        {
            await settings.ExecuteNonQueryAsync(ct);
        }

        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        cmd.Parameters.Add(new() { Value = runId });
        cmd.Parameters.Add(new() { Value = buckets });
        cmd.Parameters.Add(new() { Value = firstTsNs ?? 0L });
        cmd.Parameters.Add(new() { Value = lastTsNs ?? 0L });
        cmd.Parameters.Add(new() { Value = lastSeq });
        var list = new List<DensityBucket>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add(new DensityBucket(
                r.GetInt32(0), r.GetInt64(2), r.GetInt64(3), r.IsDBNull(4) ? null : r.GetInt64(4), r.IsDBNull(5) ? null : r.GetInt64(5), r.GetInt64(1),
                r.GetInt64(6), r.GetInt64(7), r.GetInt64(8), r.GetInt64(9), r.GetInt64(10)));
        }

        return list;
    }

    /// <summary>
    /// Seq slices from arithmetic: slice b holds the seqs s with floor((s - 1) * B / N) = b, which are
    /// ceil(b * N / B) + 1 .. ceil((b + 1) * N / B); its times are two probes of the primary key, its
    /// markers come through their two indexes (migration 0018). The columns are those of the scan's query.
    /// </summary>
    private static readonly string SeqSlicesSql = $"""
        with s as (
            select b, (b::bigint * $5 + $2 - 1) / $2 + 1 as from_seq, ((b::bigint + 1) * $5 + $2 - 1) / $2 as to_seq
            from generate_series(0, $2 - 1) as b),
        m as (
            select b, sum(memslots) as memslots, sum(unmaps) as unmaps, sum(exits) as exits, sum(divergences) as divergences, sum(errors) as errors
            from (
                -- Kinds the type alone says, from their index alone.
                select ((seq - 1) * $2 / greatest($5, 1))::int as b,
                    count(*) filter (where type = 'memslot_set') as memslots, count(*) filter (where type = 'stage2_unmapped') as unmaps,
                    count(*) filter (where type = 'memory_fault_exit_observed') as exits, count(*) filter (where type = 'divergence_found') as divergences,
                    0::bigint as errors
                from events where run_id = $1 and {KindMarkers} group by 1
                union all
                -- Decisions, whose outcome or errno is in the row.
                select ((seq - 1) * $2 / greatest($5, 1))::int, {MarkerCounts}
                from events where run_id = $1 and {DecisionMarkers} group by 1) x
            group by b)
        select s.b, s.to_seq - s.from_seq + 1, s.from_seq, s.to_seq,
            (select ts_ns from events e where e.run_id = $1 and e.seq between s.from_seq and s.to_seq and e.ts_ns is not null order by e.seq limit 1),
            (select ts_ns from events e where e.run_id = $1 and e.seq between s.from_seq and s.to_seq and e.ts_ns is not null order by e.seq desc limit 1),
            coalesce(m.memslots, 0), coalesce(m.unmaps, 0), coalesce(m.exits, 0), coalesce(m.divergences, 0), coalesce(m.errors, 0)
        from s left join m on m.b = s.b
        where s.to_seq >= s.from_seq
        order by s.b
        """;

    /// <summary>The first event of a stored type after a seq, or the last one before it.</summary>
    public async Task<(long Seq, long? TsNs)?> NextOfTypeAsync(string runId, string type, long from, bool backwards, CancellationToken ct = default)
    {
        var sql = backwards
            ? "select seq, ts_ns from events where run_id = $1 and type = $2::event_type and seq < $3 order by seq desc limit 1"
            : "select seq, ts_ns from events where run_id = $1 and type = $2::event_type and seq > $3 order by seq limit 1";
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand(sql, conn);
        cmd.Parameters.Add(new() { Value = runId });
        cmd.Parameters.Add(new() { Value = type });
        cmd.Parameters.Add(new() { Value = from });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? (r.GetInt64(0), r.IsDBNull(1) ? null : r.GetInt64(1)) : null;
    }
}
