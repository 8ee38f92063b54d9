using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Audit.Api.Features.Ingest;
using Audit.Domain;
using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Projections.Serialization;
using Audit.Projections.Storage;
using Audit.Projections.Temporal;
using Npgsql;

namespace Audit.Api.Features.Bench;

/// <summary>One measured figure: its goal, and whether the goal is a floor or a ceiling.</summary>
public sealed record Figure(string Key, double Value, double Goal, bool AtLeast, string Unit, string Note)
{
    public bool Met => AtLeast ? Value >= Goal : Value <= Goal;
}

/// <summary>
/// The benchmarks of issue 7, each measured in this process against PostgreSQL itself on the same
/// data in the same run, in a schema of its own that is dropped afterwards.
/// </summary>
public sealed class BenchSuite(string connectionString, Action<string> log)
{
    private const string Run = "bench";

    /// <param name="peers">Then run Marten beside our store on the run this suite stored (PeerProcess).</param>
    public async Task<(List<Figure> Figures, PeerReport? Peers)> RunAsync(long events, bool keep, bool peers, CancellationToken ct)
    {
        var schema = "bench_" + DateTime.UtcNow.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
        await Baselines.CreateSchemaAsync(connectionString, schema, ct);

        var cs = new NpgsqlConnectionStringBuilder(connectionString) { SearchPath = schema, MaxPoolSize = 40 }.ConnectionString;
        await using var ds = NpgsqlDataSource.Create(cs);
        try
        {
            await Migrator.MigrateAsync(ds, ct);
            var figures = new List<Figure>();

            // The engine first, before the suite's data fills this process's heap.
            log("engine: deciding 1,000,000 synthetic events on one thread");
            var engine = EngineBench.Run(1_000_000);
            figures.Add(new Figure("engineFaultsPerSec", Math.Round(engine.FaultsPerSec), 1_000_000, true, "faults/s", engine.How));
            var (ingestRatio, stored) = await Ingest(ds, events, ct);
            figures.Add(ingestRatio);
            figures.Add(await BytesPerEvent(ds, stored, ct));
            log($"bytes: {figures[^1].Value:N1} per event ({figures[^1].Note})");

            // The load settles before the read and the rebuild are timed side by side: in the full run of
            // 2026-12-03 10:03 autovacuum worked on raw_events, events and the new leaf during both. The raw
            // table stays, indexed by (run_id, seq) and vacuumed, until the rebuild's floor has read it.
            await Baselines.IndexRawTableAsync(ds, ct);
            await Baselines.VacuumAnalyzeAsync(ds, ct);
            figures.Add(await Rebuild(ds, ct));
            await Baselines.DropRawTableAsync(ds, ct);

            // What autovacuum does after a bulk load and a generation swap: statistics, and no dead rows.
            await Baselines.VacuumAnalyzeAsync(ds, ct);

            var (point, whole) = await PointQueries(ds, stored, ct);
            figures.Add(point);
            figures.Add(whole);
            figures.Add(await WhyOverHttp(ds, stored, ct));
            figures.AddRange(await Concurrent(ds, events, ct));
            figures.Add(await TraceImportBench.RunAsync(ds, 1_000_000, log, ct));
            return (figures, peers ? await Peers(cs, schema, ct) : null);
        }
        finally
        {
            if (!keep)
            {
                await Baselines.DropSchemaAsync(connectionString, schema, CancellationToken.None);
            }
        }
    }

    /// <summary>Only the tracefs import benchmark, in a schema of its own.</summary>
    public async Task<Figure> ImportOnlyAsync(CancellationToken ct)
    {
        var schema = "bench_import_" + DateTime.UtcNow.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
        await Baselines.CreateSchemaAsync(connectionString, schema, ct);
        try
        {
            await using var ds = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(connectionString) { SearchPath = schema }.ConnectionString);
            await Migrator.MigrateAsync(ds, ct);
            return await TraceImportBench.RunAsync(ds, 1_000_000, log, ct);
        }
        finally
        {
            await Baselines.DropSchemaAsync(connectionString, schema, CancellationToken.None);
        }
    }

    /// <summary>Only the 8 concurrent writers, with the full run's 400 batches each, in a schema of its own.</summary>
    public async Task<List<Figure>> WritersOnlyAsync(CancellationToken ct)
    {
        var schema = "bench_writers_" + DateTime.UtcNow.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
        await Baselines.CreateSchemaAsync(connectionString, schema, ct);
        try
        {
            await using var ds = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(connectionString) { SearchPath = schema, MaxPoolSize = 40 }.ConnectionString);
            await Migrator.MigrateAsync(ds, ct);
            return await Concurrent(ds, 10_000_000, ct);
        }
        finally
        {
            await Baselines.DropSchemaAsync(connectionString, schema, CancellationToken.None);
        }
    }

    /// <summary>Events + decisions + inline projections, batch by batch, against raw COPY BINARY of the same event rows into a bare table.</summary>
    private async Task<(Figure, long)> Ingest(NpgsqlDataSource ds, long events, CancellationToken ct)
    {
        await Baselines.CreateRawTableAsync(ds, ct);

        var store = new EventStore(ds, TimeProvider.System, [new ProjectionStore(ds)]);
        var state = Engine.Start(Policies.Arm64_6_17);
        var ours = new Stopwatch();
        var raw = new Stopwatch();
        long seq = 0;
        var batch = new List<(long Ts, InputEvent Event)>(20_000);
        var now = DateTimeOffset.UtcNow;
        foreach (var x in SyntheticRun.Generate(long.MaxValue, 42))
        {
            batch.Add(x);
            if (batch.Count < 20_000)
            {
                continue;
            }

            // Ours: decide, serialize, COPY, project, in one transaction per batch.
            ours.Start();
            var appended = new List<NewEvent>(batch.Count * 2);
            var next = seq;
            foreach (var (ts, e) in batch)
            {
                next++;
                appended.Add(new NewEvent(e, ts));
                foreach (var d in Engine.Step(state, next, e))
                {
                    next++;
                    appended.Add(new NewEvent(d, ts));
                }
            }

            await store.AppendAsync(Run, appended, seq, ct: ct);
            ours.Stop();

            // Raw: the same rows, already serialized, COPYed into a table without keys or indexes.
            var rows = appended.Select((e, i) =>
            {
                var type = EventRegistry.For(e.Event);
                return new Baselines.RawRow(seq + i + 1, type.StoredName, (short)type.Version, e.TsNs ?? 0, System.Text.Encoding.UTF8.GetString(EventSerializer.SerializePayload(e.Event)));
            }).ToList();
            raw.Start();
            await Baselines.RawCopyAsync(ds, Run, rows, now, ct);
            raw.Stop();
            seq = next;
            batch.Clear();
            log($"ingest: {seq:N0} / {events:N0} events ({seq / ours.Elapsed.TotalSeconds:N0} events/s; raw COPY {seq / raw.Elapsed.TotalSeconds:N0})");
            if (seq >= events)
            {
                break;
            }
        }

        var ratio = raw.Elapsed.TotalSeconds / ours.Elapsed.TotalSeconds;
        return (new Figure("ingestRatio", Math.Round(ratio, 3), 0.8, true, "x raw COPY",
            $"{seq:N0} events in {ours.Elapsed.TotalSeconds:0.0} s ({seq / ours.Elapsed.TotalSeconds:N0}/s) vs raw COPY {raw.Elapsed.TotalSeconds:0.0} s"), seq);
    }

    private async Task<Figure> BytesPerEvent(NpgsqlDataSource ds, long events, CancellationToken ct)
    {
        var (total, eventsBytes, projectionBytes) = await Baselines.SizesAsync(ds, ct);
        return new Figure("bytesPerEvent", Math.Round((double)total / events, 1), 250, false, "bytes",
            $"events {eventsBytes / (1 << 20):N0} MiB + projections {projectionBytes / (1 << 20):N0} MiB for {events:N0} events, tables and indexes");
    }

    /// <summary>
    /// A full rebuild of the projections against a raw ordered read of the same events as jsonb (raw_events,
    /// what ADR 0007 set the goal against: payload::text). Since ADR 0013 our own table holds faults and
    /// decisions as compact records, so its ordered read is timed too and printed beside it.
    /// </summary>
    private async Task<Figure> Rebuild(NpgsqlDataSource ds, CancellationToken ct)
    {
        log("rebuild: raw ordered reads (raw_events, then events as stored), then a full rebuild");
        var raw = Stopwatch.StartNew();
        var n = await Baselines.RawOrderedReadAsync(ds, Run, ct, table: "raw_events");
        raw.Stop();
        var stored = Stopwatch.StartNew();
        await Baselines.RawOrderedReadAsync(ds, Run, ct);
        stored.Stop();
        var ours = Stopwatch.StartNew();
        await new Rebuilder(new EventStore(ds, TimeProvider.System)).RebuildAsync(Run, ct: ct);
        ours.Stop();
        return new Figure("rebuildRatio", Math.Round(raw.Elapsed.TotalSeconds / ours.Elapsed.TotalSeconds, 3), 0.7, true, "x raw read",
            $"{n:N0} events: rebuild {ours.Elapsed.TotalSeconds:0.0} s, raw ordered read of the jsonb {raw.Elapsed.TotalSeconds:0.0} s (of our table as stored {stored.Elapsed.TotalSeconds:0.0} s)");
    }

    private async Task<(Figure Point, Figure Whole)> PointQueries(NpgsqlDataSource ds, long events, CancellationToken ct)
    {
        log("time travel: 2,000 point queries, then the whole map");
        var queries = new TemporalQueries(ds);
        var rng = new Random(7);
        var lat = new List<double>();
        const int warm = 500;
        for (var i = 0; i < 2_000 + warm; i++)
        {
            if (i == warm)
            {
                Settle();
            }

            var gpa = SyntheticRun.RandomGuestAddress(rng);
            var at = 1 + rng.NextInt64(events);
            var sw = Stopwatch.StartNew();
            await queries.RowAtAsync(Run, RunProjections.Stage2Name, gpa, at, ct);
            if (i >= warm)
            {
                lat.Add(sw.Elapsed.TotalMilliseconds);
            }
        }

        // The whole map at the end, over a gpa range holding 10,000 stage-2 intervals.
        var hi = await EndOfFirstIntervals(queries, events, 10_000, ct);
        var times = new List<double>();
        var count = 0;
        await queries.RowsAtAsync(Run, events, 0, hi, ct);
        Settle();
        for (var i = 0; i < 6; i++)
        {
            var sw = Stopwatch.StartNew();
            var rows = await queries.RowsAtAsync(Run, events, 0, hi, ct);
            times.Add(sw.Elapsed.TotalMilliseconds);
            count = rows.Count(r => r.Projection == RunProjections.Stage2Name);
        }

        times.Sort();
        return (new Figure("pointQueryP99Ms", Math.Round(P99(lat), 2), 5, false, "ms", $"mapping of a gpa at a seq, {lat.Count:N0} queries over {events:N0} events; median {Median(lat):0.00} ms"),
                new Figure("wholeMapMs", Math.Round(times[times.Count / 2], 1), 50, false, "ms", $"the whole map at a seq: {count:N0} stage-2 intervals (median of {times.Count})"));
    }

    /// <summary>The end of the first n stage-2 intervals that hold at the seq (the whole map's rows are dropped before anything is timed).</summary>
    private static async Task<ulong> EndOfFirstIntervals(TemporalQueries queries, long at, int n, CancellationToken ct)
    {
        var stage2 = (await queries.RowsAtAsync(Run, at, ct: ct)).Where(r => r.Projection == RunProjections.Stage2Name).OrderBy(r => r.Lo).ToList();
        var take = Math.Min(n, stage2.Count);
        return take == 0 ? 1UL : (ulong)stage2[take - 1].Hi;
    }

    /// <summary>
    /// Collects what the suite left (a 10M-event ingest and rebuild in this process) before latencies
    /// are timed, and after the warm-up has tiered the JIT: a blocking collection of that heap inside
    /// a sample is the suite's cost, not the query's (after a rebuild in the same process, single
    /// whole-map samples ranged 26-188 ms).
    /// </summary>
    private static void Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    private async Task<Figure> WhyOverHttp(NpgsqlDataSource ds, long events, CancellationToken ct)
    {
        log("why over HTTP: 1,000 requests on loopback");
        var port = FreePort();
        var app = Http.HttpApp.Build([], ds, $"http://127.0.0.1:{port}", new Http.HttpOptions(null, 1 << 20));
        await app.StartAsync(ct);
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            var rng = new Random(11);
            var lat = new List<double>();
            const int warm = 200;
            for (var i = 0; i < 1_000 + warm; i++)
            {
                if (i == warm)
                {
                    Settle();
                }

                var gpa = SyntheticRun.RandomGuestAddress(rng);
                var at = 1 + rng.NextInt64(events);
                var sw = Stopwatch.StartNew();
                using var r = await client.GetAsync($"/runs/{Run}/why?gpa=0x{gpa:x}&at={at}", ct);
                _ = await r.Content.ReadAsStringAsync(ct);
                if (!r.IsSuccessStatusCode)
                {
                    throw new InvalidOperationException($"why answered {(int)r.StatusCode}");
                }

                if (i >= warm)
                {
                    lat.Add(sw.Elapsed.TotalMilliseconds);
                }
            }

            return new Figure("whyP99Ms", Math.Round(P99(lat), 2), 10, false, "ms", $"GET /runs/{{run}}/why, {lat.Count:N0} requests over {events:N0} events; median {Median(lat):0.00} ms");
        }
        finally
        {
            await app.StopAsync(CancellationToken.None);
            await app.DisposeAsync();
        }
    }

    /// <summary>The batches each writer appends in the untimed warm-up round of <see cref="Concurrent"/>.</summary>
    private const int WarmupBatches = 80;

    /// <summary>
    /// 8 writers, each appending 100-event batches (decided and projected) to a run of its own. An untimed round
    /// on runs of their own comes first, as the suite's other latencies are timed after a warm-up: without it the
    /// timed round spent a large share of its CPU in the JIT (docs/benchmarks.md). The timed round's runs are new
    /// all the same: each writer's first append still attaches its run's leaf inside the clock, from a spare the
    /// warm-up left (ADR 0005), and the spares it claims are made again in the background inside the clock too.
    /// </summary>
    private async Task<List<Figure>> Concurrent(NpgsqlDataSource ds, long events, CancellationToken ct)
    {
        var batches = events >= 5_000_000 ? 400 : 150;
        await using var projections = new ProjectionStore(ds, Partitions.SpareLeaves);
        await using var writer = new RunWriter(new EventStore(ds, TimeProvider.System, [projections]));
        log($"8 concurrent writers: an untimed round of {WarmupBatches} batches each to runs of their own, then the timed one");
        // In two halves, each followed by the JIT's background compiling: the first half's hot methods come back
        // instrumented (dynamic PGO), and only calls after that compile them optimized.
        var warmup = WriterInputs(WarmupBatches, 200);
        for (var half = 0; half < 2; half++)
        {
            await WriteRoundAsync(writer, "warmup", [.. warmup.Select(i => i.GetRange(half * i.Count / 2, i.Count / 2))], (_, _, _, _) => { }, ct);
            await writer.DrainAsync();
            // The spare leaves the warm-up's new runs began to replace, as a host that ran a while has them.
            await projections.SparesMade;
            var (methods, waited) = await JitSettledAsync(ct);
            log($"8 concurrent writers: untimed half {half + 1} of 2 done ({await SpareCountAsync(ds, ct)} spare leaves); the JIT then compiled {methods:N0} methods in {waited.TotalMilliseconds:N0} ms");
        }

        var heap = GC.GetGCMemoryInfo();
        log($"8 concurrent writers: {batches} batches of 100 events each (this process's GC heap {heap.HeapSizeBytes >> 20:N0} MiB, {GC.GetTotalMemory(false) >> 20:N0} MiB in use, gen2 collections so far {GC.CollectionCount(2)})");
        var lat = new System.Collections.Concurrent.ConcurrentBag<double>();
        var appends = new System.Collections.Concurrent.ConcurrentBag<(double Ms, double GcPauseMs, int Batch, double CheckpointMs)>();
        long stored = 0;
        // The writers' inputs are made before the clock starts: made inside each writer, they took the cores
        // while the other writers' first appends ran, and those appends counted it. Settled into gen 2 with what
        // the warm-up left, so that the round's own collections do not copy them.
        var runs = WriterInputs(batches, 100);
        Settle();
        var (collections, paused0) = (GC.CollectionCount(0), GC.GetTotalPauseDuration());
        var cpu0 = HostCpu.Read();
        var allocated0 = GC.GetTotalAllocatedBytes(false);
        var wall = Stopwatch.StartNew();
        await WriteRoundAsync(writer, "writer", runs, (ms, pauseMs, b, r) =>
        {
            lat.Add(ms);
            appends.Add((ms, pauseMs, b, r.CheckpointMs));
            Interlocked.Add(ref stored, r.Result!.EventCount);
        }, ct);
        // The engine states the appends began to save are written before the clock stops: their work is the phase's.
        await writer.DrainAsync();
        wall.Stop();
        var cpu1 = HostCpu.Read();
        var allocatedKb = (GC.GetTotalAllocatedBytes(false) - allocated0) / 1024.0 / lat.Count;
        var list = lat.ToList();
        return
        [
            new Figure("concurrentEventsPerSec", Math.Round(stored / wall.Elapsed.TotalSeconds), 30_000, true, "events/s", $"{stored:N0} events (inputs and decisions) from 8 writers in {wall.Elapsed.TotalSeconds:0.0} s"),
            new Figure("appendP99Ms", Math.Round(P99(list), 1), 50, false, "ms", $"{list.Count:N0} appends of 100 inputs, after an untimed round of {WarmupBatches} each; median {Median(list):0.0} ms; {HostCpu.Describe(cpu0, cpu1, list.Count, 8, list.Average())}; {Tail(appends.ToList())}; this process allocated {allocatedKb:N0} KiB per append and paused {(GC.GetTotalPauseDuration() - paused0).TotalMilliseconds:N0} ms in {GC.CollectionCount(0) - collections} GCs"),
        ];
    }

    private static async Task<int> SpareCountAsync(NpgsqlDataSource ds, CancellationToken ct)
    {
        await using var conn = await ds.OpenConnectionAsync(ct);
        return (await Partitions.SparesAsync(conn, null, ct)).Count;
    }

    /// <summary>
    /// Waits until the JIT's background compiling of what a warm-up made hot has ended: no method compiled for 300 ms,
    /// or 10 s at most. Returns how many it compiled meanwhile and how long it waited.
    /// </summary>
    private static async Task<(long Methods, TimeSpan Waited)> JitSettledAsync(CancellationToken ct)
    {
        var started = Stopwatch.StartNew();
        var first = System.Runtime.JitInfo.GetCompiledMethodCount();
        var last = first;
        var quiet = Stopwatch.StartNew();
        while (quiet.ElapsedMilliseconds < 300 && started.Elapsed < TimeSpan.FromSeconds(10))
        {
            await Task.Delay(50, ct);
            var now = System.Runtime.JitInfo.GetCompiledMethodCount();
            if (now != last)
            {
                last = now;
                quiet.Restart();
            }
        }

        return (last - first, started.Elapsed);
    }

    /// <summary>Each writer's inputs: its batches of 100 synthetic inputs, from a seed of its own.</summary>
    private static List<List<TraceEvent>> WriterInputs(int batches, int seed) =>
        Enumerable.Range(0, 8).Select(w => SyntheticRun.Generate(batches * 100L, seed + w).Select(x => new TraceEvent(0, x.TsNs, x.Event, [])).ToList()).ToList();

    /// <summary>The 8 writers at once, writer w appending its inputs 100 at a time to run prefix+w; each append's time, this process's GC pause during it, its batch and outcome go to <paramref name="appended"/>.</summary>
    private static Task WriteRoundAsync(RunWriter writer, string prefix, List<List<TraceEvent>> inputs, Action<double, double, int, RunWriter.Outcome> appended, CancellationToken ct) =>
        Task.WhenAll(inputs.Select((mine, w) => Task.Run(async () =>
        {
            for (var b = 0; b < mine.Count / 100; b++)
            {
                var sw = Stopwatch.StartNew();
                var paused = GC.GetTotalPauseDuration();
                var r = await writer.AppendAsync(prefix + w.ToString(CultureInfo.InvariantCulture), mine.GetRange(b * 100, 100), null, null, null, ct);
                appended(sw.Elapsed.TotalMilliseconds, (GC.GetTotalPauseDuration() - paused).TotalMilliseconds, b, r);
            }
        }, ct)));

    /// <summary>What the slowest 1% of appends had in common: this process's GC pauses while they ran, and where in their writer's run they fell.</summary>
    private static string Tail(List<(double Ms, double GcPauseMs, int Batch, double CheckpointMs)> appends)
    {
        var cut = P99(appends.Select(a => a.Ms).ToList());
        var tail = appends.Where(a => a.Ms >= cut).ToList();
        var paused = tail.Where(a => a.GcPauseMs > 0).ToList();
        var first = appends.Where(a => a.Batch == 0).Select(a => a.Ms).ToList();
        var saves = appends.Where(a => a.CheckpointMs > 0).ToList();
        return FormattableString.Invariant(
            $"the slowest {tail.Count}: {paused.Count} ran through a GC pause of this process (median {Median(paused.Select(a => a.GcPauseMs).ToList()):0.0} ms), {tail.Count(a => a.Batch == 0)} were their writer's first (which attaches the run's projection leaf: median {Median(first):0.0} ms, max {first.Max():0.0}), {tail.Count(a => a.CheckpointMs > 0)} saved their run's engine state after it (the phase's {saves.Count} saves took a median of {Median(saves.Select(a => a.CheckpointMs).ToList()):0.0} ms each, {saves.Count(a => a.Ms >= 50)} of their appends took 50 ms or more)");
    }

    /// <summary>Why the peers bench gave no report, when it was asked for and failed (the suite's figures stand).</summary>
    public string? PeerError { get; private set; }

    private async Task<PeerReport?> Peers(string cs, string schema, CancellationToken ct)
    {
        try
        {
            return await PeerProcess.RunAsync(cs, Run, schema + "_peers", log, ct);
        }
        catch (Exception ex) when (ex is InvalidOperationException or JsonException or System.ComponentModel.Win32Exception)
        {
            PeerError = ex.Message;
            return null;
        }
    }

    private static double P99(List<double> xs)
    {
        var s = xs.Order().ToList();
        return s.Count == 0 ? 0 : s[(int)Math.Min(s.Count - 1, Math.Ceiling(s.Count * 0.99) - 1)];
    }

    private static double Median(List<double> xs) => xs.Count == 0 ? 0 : xs.Order().ElementAt(xs.Count / 2);

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
