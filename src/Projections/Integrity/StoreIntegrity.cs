using Audit.Projections.Serialization;
using Npgsql;

namespace Audit.Projections.Integrity;

/// <summary>One thing wrong with a run's stored events: which check, and what it found.</summary>
public sealed record Problem(string Run, string Check, string Detail);

/// <summary>
/// The store's own promises, checked from its tables one run at a time (no query spans runs): a
/// run's events are numbered 1..version without a gap, its input count is its input events, and
/// every idempotent batch is whole (all its events there, none shared with another batch).
/// </summary>
public sealed class StoreIntegrity(NpgsqlDataSource dataSource)
{
    private static readonly string[] InputTypes = EventRegistry.Types.Where(t => !t.Derived).Select(t => t.StoredName).ToArray();

    public async Task<IReadOnlyList<string>> RunIdsAsync(CancellationToken ct = default)
    {
        await using var cmd = dataSource.CreateCommand("select run_id from runs order by run_id");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var ids = new List<string>();
        while (await r.ReadAsync(ct))
        {
            ids.Add(r.GetString(0));
        }

        return ids;
    }

    public async Task<IReadOnlyList<Problem>> CheckAsync(string run, CancellationToken ct = default)
    {
        var problems = new List<Problem>();
        await CheckSequenceAsync(run, problems, ct);
        await CheckBatchesAsync(run, problems, ct);
        return problems;
    }

    private async Task CheckSequenceAsync(string run, List<Problem> problems, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            select r.version, r.input_count, count(e.seq), coalesce(min(e.seq), 0), coalesce(max(e.seq), 0), count(e.seq) filter (where e.type = any($2::event_type[]))
            from runs r left join events e on e.run_id = $1 and e.run_id = r.run_id
            where r.run_id = $1
            group by r.version, r.input_count
            """);
        cmd.Parameters.Add(new() { Value = run });
        cmd.Parameters.Add(new() { Value = InputTypes });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct))
        {
            return;
        }

        var (version, inputCount, count, min, max, inputs) = (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5));
        await r.DisposeAsync();
        if (max != version)
        {
            problems.Add(new(run, "stream-version", $"the run is at version {version} but its last event is seq {max}"));
        }

        if (count != max || (count > 0 && min != 1))
        {
            var gaps = await GapsAsync(run, max, ct);
            problems.Add(new(run, "sequence", $"{count} events numbered {min}..{max}: {max - count} missing{(gaps.Count > 0 ? ", first after seq " + string.Join(", ", gaps) : "")}"));
        }

        if (inputs != inputCount)
        {
            problems.Add(new(run, "input-count", $"the run counts {inputCount} input events but {inputs} are stored"));
        }
    }

    private async Task<IReadOnlyList<long>> GapsAsync(string run, long max, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            select e.seq from events e
            where e.run_id = $1 and e.seq < $2 and not exists (select 1 from events n where n.run_id = $1 and n.seq = e.seq + 1)
            order by e.seq limit 5
            """);
        cmd.Parameters.Add(new() { Value = run });
        cmd.Parameters.Add(new() { Value = max });
        var gaps = new List<long>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            gaps.Add(r.GetInt64(0));
        }

        return gaps;
    }

    private async Task CheckBatchesAsync(string run, List<Problem> problems, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            select b.batch_key, b.first_seq, b.last_seq, b.input_count, b.event_count,
                   (select count(*) from events e where e.run_id = $1 and e.seq between b.first_seq and b.last_seq),
                   (select count(*) from events e where e.run_id = $1 and e.seq between b.first_seq and b.last_seq and e.type = any($2::event_type[]))
            from batches b where b.run_id = $1 and b.event_count > 0
            order by b.first_seq
            """);
        cmd.Parameters.Add(new() { Value = run });
        cmd.Parameters.Add(new() { Value = InputTypes });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        long previousLast = 0;
        while (await r.ReadAsync(ct))
        {
            var (key, first, last, inputs, events, present, presentInputs) =
                (r.GetString(0), r.GetInt64(1), r.GetInt64(2), r.GetInt32(3), r.GetInt32(4), r.GetInt64(5), r.GetInt64(6));
            var name = key.Length > 24 ? key[..24] + "..." : key;
            if (last - first + 1 != events || present != events)
            {
                problems.Add(new(run, "batch", $"batch {name} (seq {first}..{last}) should hold {events} events; {present} are stored"));
            }
            else if (presentInputs != inputs)
            {
                problems.Add(new(run, "batch", $"batch {name} (seq {first}..{last}) should hold {inputs} input events; {presentInputs} are stored"));
            }

            if (first <= previousLast)
            {
                problems.Add(new(run, "batch", $"batch {name} (seq {first}..{last}) overlaps the batch before it (up to seq {previousLast})"));
            }

            previousLast = Math.Max(previousLast, last);
        }
    }
}
