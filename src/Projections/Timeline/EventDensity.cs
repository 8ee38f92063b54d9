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
    private static readonly string Counts = $"""
        count(*),
        min(seq), max(seq), min(ts_ns), max(ts_ns),
        count(*) filter (where type = 'memslot_set'),
        count(*) filter (where type = 'stage2_unmapped'),
        count(*) filter (where type = 'memory_fault_exit_observed' or (type = 'fault_resolved' and {OutcomeIn(FaultOutcome.MemoryFaultExit)})),
        count(*) filter (where type = 'divergence_found'),
        count(*) filter (where (type = 'fault_resolved' and {OutcomeIn(FaultOutcome.Error, FaultOutcome.Sigbus)})
                            or (type in ('memslot_decided', 'ioctl_decided') and payload->>'predictedErrno' <> '0'))
        """;

    /// <summary>
    /// Slices of equal seq width (<paramref name="byTime"/> false) or of equal time between the run's
    /// first and last timestamp (events without one are left out); empty slices are not returned.
    /// </summary>
    public async Task<IReadOnlyList<DensityBucket>> BucketsAsync(string runId, long lastSeq, long? firstTsNs, long? lastTsNs, int buckets, bool byTime, CancellationToken ct = default)
    {
        // Integer slices of seq; time slices in float8 (256 ns steps at today's epoch: far below a bucket).
        var slice = byTime
            ? "least(floor((ts_ns - $3)::float8 * $2 / greatest($4 - $3 + 1, 1)::float8)::int, $2 - 1)"
            : "((seq - 1) * $2 / greatest($5, 1))::int";
        var timed = byTime ? " and ts_ns is not null" : "";
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand($"select {slice} as b, {Counts} from events where run_id = $1{timed} group by 1 order by 1", conn);
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

    /// <summary>The first event of a stored type after a seq, or the last one before it.</summary>
    public async Task<(long Seq, long? TsNs)?> NextOfTypeAsync(string runId, string type, long from, bool backwards, CancellationToken ct = default)
    {
        var sql = backwards
            ? "select seq, ts_ns from events where run_id = $1 and type = $2 and seq < $3 order by seq desc limit 1"
            : "select seq, ts_ns from events where run_id = $1 and type = $2 and seq > $3 order by seq limit 1";
        await using var conn = await dataSource.OpenConnectionAsync(ct);
        await using var cmd = new NpgsqlCommand(sql, conn);
        cmd.Parameters.Add(new() { Value = runId });
        cmd.Parameters.Add(new() { Value = type });
        cmd.Parameters.Add(new() { Value = from });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? (r.GetInt64(0), r.IsDBNull(1) ? null : r.GetInt64(1)) : null;
    }
}
