using System.Diagnostics;
using Audit.Projections.Serialization;
using Audit.Projections.Storage;
using Npgsql;

namespace Audit.Bench.Peers;

/// <summary>
/// The four operations of issue 22 on the same events, each store in turn, with raw COPY BINARY of the
/// same rows (20,000 a COPY) and a raw ordered read of them as the floors. One pass each: on a shared
/// machine the ratios, measured minutes apart in one process, are what to read, not the seconds.
/// </summary>
internal sealed class PeerBench(NpgsqlDataSource ds, IReadOnlyList<IPeer> peers, Action<string> log)
{
    private const string RawRun = "raw";
    private const int Writers = 8;
    private const int SessionSize = 1_000;

    /// <summary>The events of a stored run, explanations resolved, in seq order.</summary>
    public static async Task<List<Timed>> LoadAsync(string connectionString, string run, CancellationToken ct)
    {
        await using var source = NpgsqlDataSource.Create(connectionString);
        var list = new List<Timed>();
        await foreach (var e in new EventStore(source, TimeProvider.System).ReadAsync(run, ct: ct))
        {
            list.Add(new Timed(e.Event, e.TsNs));
        }

        return list.Count > 0 ? list : throw new InvalidOperationException($"run '{run}' has no events to measure");
    }

    public async Task<PeerReport> RunAsync(List<Timed> events, CancellationToken ct)
    {
        var warmUp = events.Take(2_000).ToList();
        foreach (var p in peers)
        {
            await p.PrepareAsync(warmUp, ct);
        }

        log($"raw COPY of {events.Count:N0} rows");
        await SettleAsync(ct);
        var rawCopy = await RawCopyAsync(events, ct);
        var rawBytes = await RawBytesAsync(ct);
        var bulk = await Each("bulk", (p, c) => p.BulkAsync("bulk", events, c), ct);
        var bytes = new Dictionary<string, double>();
        foreach (var p in peers)
        {
            bytes[p.Name] = (double)await p.EventBytesAsync(ct) / rawBytes;
        }

        var sessions = await Each($"{SessionSize:N0}-event sessions", (p, c) => p.SessionsAsync("sessions", events, SessionSize, c), ct);
        var share = events.Take(events.Count / Writers).ToList();
        var writers = await Each($"{Writers} writers", (p, c) => Task.WhenAll(Enumerable.Range(0, Writers).Select(w => Task.Run(() => p.SessionsAsync($"writer{w}", share, SessionSize, c), c))), ct);
        var rawRead = await RawReadAsync(events.Count, ct);
        var read = await Each("read", async (p, c) =>
        {
            var n = await p.ReadAsync("bulk", c);
            if (n != events.Count)
            {
                throw new InvalidOperationException($"{p.Name} read {n:N0} of {events.Count:N0} events");
            }
        }, ct);

        double Ratio(TimeSpan floor, Dictionary<string, TimeSpan> times, string peer) => Math.Round(floor / times[peer], 3);
        PeerRow Row(string figure, TimeSpan floor, Dictionary<string, TimeSpan> times, string how) =>
            new(figure, Ratio(floor, times, "Marten"), Ratio(floor, times, "ours"), Math.Round(times["Marten"] / times["ours"], 2),
                $"{how}; Marten {times["Marten"].TotalSeconds:0.0} s, ours {times["ours"].TotalSeconds:0.0} s, raw {floor.TotalSeconds:0.0} s");
        var n = $"{events.Count:N0} events";
        return new PeerReport(events.Count, $"raw COPY BINARY {rawCopy.TotalSeconds:0.0} s, raw ordered read {rawRead.TotalSeconds:0.0} s", [
            Row("bulkInsert", rawCopy, bulk, $"x raw COPY; {n} in one stream: Marten BulkInsertEventsAsync (no projections, no version check), ours AppendAsync in 20,000-event batches (projections, version check)"),
            Row("sessionAppend", rawCopy, sessions, $"x raw COPY; {n} in {SessionSize:N0}-event sessions: Marten Quick append, ours AppendAsync with expected version and projections"),
            Row("writers8", rawCopy, writers, $"x raw COPY; {Writers} writers at once, each {share.Count:N0} events to a stream of its own in {SessionSize:N0}-event sessions"),
            Row("readStream", rawRead, read, $"x raw ordered read; the {n} back as events: Marten FetchStreamAsync, ours EventStore.ReadAsync"),
            new("bytes", Math.Round(bytes["Marten"], 2), Math.Round(bytes["ours"], 2), Math.Round(bytes["Marten"] / bytes["ours"], 2), $"x raw table (lower is smaller); event tables and indexes after the bulk stream, {rawBytes / (double)events.Count:0} raw bytes per event; ours without its projections"),
        ]);
    }

    /// <summary>
    /// Times one operation for every store, each after the load settled (Settle); the stores take turns
    /// at going first, so neither always runs after the other's heavier write.
    /// </summary>
    private async Task<Dictionary<string, TimeSpan>> Each(string what, Func<IPeer, CancellationToken, Task> op, CancellationToken ct)
    {
        var times = new Dictionary<string, TimeSpan>();
        var order = _turn++ % 2 == 0 ? peers : peers.Reverse().ToList();
        foreach (var p in order)
        {
            await SettleAsync(ct);
            log($"{what}: {p.Name}");
            var sw = Stopwatch.StartNew();
            await op(p, ct);
            times[p.Name] = sw.Elapsed;
        }

        return times;
    }

    private int _turn;

    /// <summary>
    /// What autovacuum would do after the last bulk write, done before the next timing, then a checkpoint:
    /// in the first run (2026-12-04 01:13, load average near 30) each store's writes ran beside the
    /// autovacuum of the other's fresh tables.
    /// </summary>
    private async Task SettleAsync(CancellationToken ct)
    {
        var tables = new List<string>();
        await using (var list = ds.CreateCommand("select format('%I.%I', schemaname, tablename) from pg_tables where schemaname = current_schema()"))
        await using (var r = await list.ExecuteReaderAsync(ct))
        {
            while (await r.ReadAsync(ct))
            {
                tables.Add(r.GetString(0));
            }
        }

        foreach (var sql in tables.Select(t => "vacuum analyze " + t).Append("checkpoint"))
        {
            await using var cmd = ds.CreateCommand(sql);
            cmd.CommandTimeout = 0;
            try
            {
                await cmd.ExecuteNonQueryAsync(ct);
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.InsufficientPrivilege)
            {
                // A role without pg_checkpoint (--db on a shared server): the checkpointer flushes in its own time.
            }
        }

        GC.Collect();
    }

    /// <summary>The rows already serialized (as the suite's ingest baseline), COPYed into a bare table.</summary>
    private async Task<TimeSpan> RawCopyAsync(List<Timed> events, CancellationToken ct)
    {
        await Baselines.CreateRawTableAsync(ds, ct);
        var rows = events.Select((e, i) =>
        {
            var type = EventRegistry.For(e.Event);
            return new Baselines.RawRow(i + 1, type.StoredName, (short)type.Version, e.TsNs ?? 0, System.Text.Encoding.UTF8.GetString(EventSerializer.SerializePayload(e.Event)));
        }).ToList();
        var now = DateTimeOffset.UtcNow;
        var sw = Stopwatch.StartNew();
        foreach (var chunk in rows.Chunk(20_000))
        {
            await Baselines.RawCopyAsync(ds, RawRun, chunk, now, ct);
        }

        return sw.Elapsed;
    }

    private async Task<long> RawBytesAsync(CancellationToken ct)
    {
        await using var cmd = ds.CreateCommand("select pg_total_relation_size('raw_events')");
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    /// <summary>The raw rows in seq order as text, through an index on (run_id, seq) like both stores' keys.</summary>
    private async Task<TimeSpan> RawReadAsync(int expected, CancellationToken ct)
    {
        await using (var index = ds.CreateCommand("create index on raw_events (run_id, seq)"))
        {
            index.CommandTimeout = 0;
            await index.ExecuteNonQueryAsync(ct);
        }

        await SettleAsync(ct);

        var sw = Stopwatch.StartNew();
        var n = await Baselines.RawOrderedReadAsync(ds, RawRun, ct, table: "raw_events");
        return n == expected ? sw.Elapsed : throw new InvalidOperationException($"raw read {n:N0} of {expected:N0} rows");
    }
}
