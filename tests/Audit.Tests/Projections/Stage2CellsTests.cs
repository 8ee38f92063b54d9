using Audit.Api.Features.Bench;
using Audit.Api.Features.Ingest;
using Audit.Api.Http;
using Audit.Projections.Serialization;
using Audit.Projections.Storage;
using Audit.Projections.Temporal;
using Audit.Tests.Infrastructure;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Audit.Tests.Projections;

/// <summary>
/// The coarse projection of stage-2 (ADR 0015): the cells stored by the inline projection and by a rebuild
/// are the cells an in-memory fold holds, and a zoomed-out map drawn from them has, pixel for pixel, the
/// kinds the same map drawn from the stage-2 rows has.
/// </summary>
public sealed class Stage2CellsTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private readonly string Run = "cells-" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>Pixel sizes from one cell of the smallest level to several of the largest, and one between levels.</summary>
    private static readonly ulong[] BytesPerPixel = [2UL << 20, 6UL << 20, 32UL << 20, 100UL << 20, 1UL << 30];

    private async Task<HashSet<(string, long, long, long, string)>> StoredCellsAsync(long at)
    {
        await using var cmd = DataSource.CreateCommand("""
            select projection, lo, hi, from_seq, data::text from projection_rows
            where run_id = $1 and gen = (select active_gen from projection_generations where run_id = $1)
              and starts_with(projection, 'stage2cells/') and from_seq <= $2 and (to_seq is null or to_seq > $2)
            """);
        cmd.Parameters.Add(new() { Value = Run });
        cmd.Parameters.Add(new() { Value = at });
        var rows = new HashSet<(string, long, long, long, string)>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            rows.Add((r.GetString(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), RunProjections.De<CellData>(r.GetString(4)).Kinds.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        return rows;
    }

    private static HashSet<(string, long, long, long, string)> Cells(RunProjections fold) =>
        fold.Current().Where(r => Stage2Cells.IsCells(r.Projection))
            .Select(r => (r.Projection, r.Lo, r.Hi, r.FromSeq, RunProjections.De<CellData>(r.Data).Kinds.ToString(System.Globalization.CultureInfo.InvariantCulture))).ToHashSet();

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task For_every_prefix_the_stored_cells_are_the_cells_folded_in_memory_before_and_after_a_rebuild(int seed)
    {
        // Each batch through a new store: the projection counts the cells' kinds again from the rows it loads back.
        var stored = await ProjectionPropertyTests.Append(DataSource, Run, RandomRun.Generate(seed, 250), batches: 7, reload: true);
        var fold = new RunProjections();
        var expected = new List<HashSet<(string, long, long, long, string)>>();
        foreach (var e in stored)
        {
            fold.Apply(e.Recorded);
            expected.Add(Cells(fold));
            Assert.True(expected[^1].SetEquals(await StoredCellsAsync(e.Seq)), $"seed {seed}, seq {e.Seq} ({e.Type})");
        }

        Assert.Contains(expected, c => c.Count > 0);
        // A cell's row lasts while its set of kinds does: far fewer rows than the stage-2 rows that ever held.
        Assert.True(expected.SelectMany(c => c).Distinct().Count() < fold.Stage2.Rows.Count + stored.Count);

        await new Rebuilder(new EventStore(DataSource, TimeProvider.System), chunk: 40, checkpointFactor: 0).RebuildAsync(Run);
        for (var i = 0; i < stored.Count; i++)
        {
            Assert.True(expected[i].SetEquals(await StoredCellsAsync(stored[i].Seq)), $"seed {seed}, seq {stored[i].Seq} after the rebuild");
        }
    }

    public static TheoryData<string> Runs() => new(["synthetic", .. Directory.GetFiles(Paths.Samples, "*.ndjson").Select(f => Path.GetFileName(f))]);

    [Theory]
    [MemberData(nameof(Runs))]
    public async Task Zoomed_out_the_cells_give_each_pixel_the_kind_the_rows_give_it_at_several_points(string source)
    {
        await StoreAsync(source);
        var queries = new TemporalQueries(DataSource);
        var extents = Merge(await queries.SpansEverAsync(Run, "memslots/"));
        var last = (await new EventStore(DataSource, TimeProvider.System).GetRunAsync(Run))!.EventCount;
        var drawn = 0;
        foreach (var perPixel in BytesPerPixel)
        {
            var coarse = extents.Select(e => Stage2Cells.Snap(e.Lo, e.Hi, perPixel)).OfType<MapWindow>().ToList();
            var rows = coarse.Select(w => w with { CellBits = 0 }).ToList();
            foreach (var at in new[] { last / 5, last / 2, 4 * last / 5, last })
            {
                var fromCells = await queries.MapAtAsync(Run, at, coarse);
                var fromRows = await queries.MapAtAsync(Run, at, rows);

                Assert.All(fromCells.Stage2, s => Assert.True(s.CellSize > 0, "a window of whole cells is answered from the cells"));
                Assert.All(fromRows.Stage2, s => Assert.Equal(0UL, s.CellSize));
                var want = Pixels(rows, fromRows.Stage2);
                Assert.Equal(want, Pixels(coarse, fromCells.Stage2));
                drawn += want.Count;
            }
        }

        Assert.True(drawn > 0, $"{source}: no pixel drawn");
    }

    [Fact]
    public async Task A_run_stored_before_the_cells_keeps_the_exact_map_until_a_rebuild_gives_it_cells()
    {
        await StoreAsync("synthetic");
        await Exec($"delete from projection_rows where run_id = '{Run}' and starts_with(projection, 'stage2cells/')");
        await Exec($"delete from projection_checkpoints where run_id = '{Run}' and starts_with(projection, 'stage2cells/')");
        var queries = new TemporalQueries(DataSource);
        var windows = Merge(await queries.SpansEverAsync(Run, "memslots/")).Select(e => Stage2Cells.Snap(e.Lo, e.Hi, 64UL << 20)).OfType<MapWindow>().ToList();

        // More events through a new store: it loads stage-2 rows but no cell, so it keeps no cells for this run.
        var more = SyntheticRun.Generate(400, 8).Skip(200).Select(e => new TraceEvent(0, e.TsNs, e.Event, [])).ToList();
        await using (var app = NewApp())
        {
            await app.StartAsync();
            Assert.Null((await app.Services.GetRequiredService<RunWriter>().AppendAsync(Run, more, null, null, "arm64/6.17", CancellationToken.None)).Error);
        }

        var last = (await new EventStore(DataSource, TimeProvider.System).GetRunAsync(Run))!.EventCount;
        Assert.Empty(await StoredCellsAsync(last));
        var before = await queries.MapAtAsync(Run, last, windows);
        Assert.NotEmpty(before.Stage2);
        Assert.All(before.Stage2, s => Assert.Equal(0UL, s.CellSize));

        await new Rebuilder(new EventStore(DataSource, TimeProvider.System)).RebuildAsync(Run);
        var after = await queries.MapAtAsync(Run, last, windows);
        Assert.All(after.Stage2, s => Assert.True(s.CellSize > 0));
        Assert.Equal(Pixels(windows, before.Stage2), Pixels(windows, after.Stage2));
    }

    /// <summary>The kind bit drawn on each pixel of each window, as the page paints the spans.</summary>
    private static Dictionary<(int Window, ulong Px), int> Pixels(IReadOnlyList<MapWindow> windows, IReadOnlyList<Stage2Span> spans)
    {
        var pixels = new Dictionary<(int, ulong), int>();
        foreach (var s in spans)
        {
            var i = windows.Select((w, i) => (w, i)).Single(p => (ulong)s.Lo >= p.w.Lo && (ulong)s.Lo < p.w.Hi).i;
            var w = windows[i];
            for (var px = ((ulong)s.Lo - w.Lo) / w.Cell; px <= ((ulong)s.Hi - 1 - w.Lo) / w.Cell; px++)
            {
                Assert.True(pixels.TryAdd((i, px), s.Bit), $"two spans on pixel {px} of window {i}");
            }
        }

        return pixels;
    }

    private static List<(ulong Lo, ulong Hi)> Merge(IReadOnlyList<(long Lo, long Hi)> spans)
    {
        var merged = new List<(ulong Lo, ulong Hi)>();
        foreach (var (lo, hi) in spans.Select(s => ((ulong)s.Lo, (ulong)s.Hi)).OrderBy(s => s.Item1))
        {
            if (merged.Count > 0 && lo <= merged[^1].Hi)
            {
                merged[^1] = (merged[^1].Lo, Math.Max(merged[^1].Hi, hi));
            }
            else
            {
                merged.Add((lo, hi));
            }
        }

        return merged;
    }

    private Microsoft.AspNetCore.Builder.WebApplication NewApp() =>
        HttpApp.Build([], DataSource, options: new HttpOptions(null, 1 << 20), configure: b => b.WebHost.UseTestServer());

    /// <summary>A synthetic run (three batches) or a bundled sample, stored as a client posting it would.</summary>
    private async Task StoreAsync(string source)
    {
        await using var app = NewApp();
        await app.StartAsync();
        var writer = app.Services.GetRequiredService<RunWriter>();
        var events = source == "synthetic"
            ? SyntheticRun.Generate(3_000, 7).Select(e => new TraceEvent(0, e.TsNs, e.Event, [])).ToList()
            : SampleRuns.Traced(source);
        foreach (var batch in events.Chunk((events.Count + 2) / 3))
        {
            var outcome = await writer.AppendAsync(Run, [.. batch], null, null, source == "synthetic" ? "arm64/6.17" : null, CancellationToken.None);
            Assert.Null(outcome.Error);
        }
    }

    private async Task Exec(string sql)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync();
    }
}
