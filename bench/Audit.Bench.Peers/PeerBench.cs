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
            new(figure, Ratio(floor, times, "Marten"), Ratio(floor, times, "ours"), $"{how}; Marten {times["Marten"].TotalSeconds:0.0} s, ours {times["ours"].TotalSeconds:0.0} s, raw {floor.TotalSeconds:0.0} s");
        var n = $"{events.Count:N0} events";
        return new PeerReport(events.Count, $"raw COPY BINARY {rawCopy.TotalSeconds:0.0} s, raw ordered read {rawRead.TotalSeconds:0.0} s", [
            Row("bulkInsert", rawCopy, bulk, $"x raw COPY; {n} in one stream: Marten BulkInsertEventsAsync (no projections, no version check), ours AppendAsync in 20,000-event batches (projections, version check)"),
            Row("sessionAppend", rawCopy, sessions, $"x raw COPY; {n} in {SessionSize:N0}-event sessions: Marten Quick append, ours AppendAsync with expected version and projections"),
            Row("writers8", rawCopy, writers, $"x raw COPY; {Writers} writers at once, each {share.Count:N0} events to a stream of its own in {SessionSize:N0}-event sessions"),
            Row("readStream", rawRead, read, $"x raw ordered read; the {n} back as events: Marten FetchStreamAsync, ours EventStore.ReadAsync"),
            new("bytes", Math.Round(bytes["Marten"], 2), Math.Round(bytes["ours"], 2), $"x raw table (lower is smaller); event tables and indexes after the bulk stream, {rawBytes / (double)events.Count:0} raw bytes per event; ours without its projections"),
        ]);
    }

    /// <summary>Times one operation for every store, in the order they were given.</summary>
    private async Task<Dictionary<string, TimeSpan>> Each(string what, Func<IPeer, CancellationToken, Task> op, CancellationToken ct)
    {
        var times = new Dictionary<string, TimeSpan>();
        foreach (var p in peers)
        {
            log($"{what}: {p.Name}");
            var sw = Stopwatch.StartNew();
            await op(p, ct);
            times[p.Name] = sw.Elapsed;
        }

        return times;
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
        foreach (var sql in new[] { "create index on raw_events (run_id, seq)", "vacuum analyze raw_events" })
        {
            await using var cmd = ds.CreateCommand(sql);
            cmd.CommandTimeout = 0;
            await cmd.ExecuteNonQueryAsync(ct);
        }

        var sw = Stopwatch.StartNew();
        var n = await Baselines.RawOrderedReadAsync(ds, RawRun, ct, table: "raw_events");
        return n == expected ? sw.Elapsed : throw new InvalidOperationException($"raw read {n:N0} of {expected:N0} rows");
    }
}
