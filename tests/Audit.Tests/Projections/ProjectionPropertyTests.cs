using Audit.Domain;
using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Projections.Storage;
using Audit.Projections.Temporal;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Projections;

/// <summary>
/// Seeded property tests against a real PostgreSQL: for every prefix N of a random run, the rows
/// that hold at N in the database equal the rows an in-memory fold of the first N events holds;
/// and a rebuild yields the same rows as the inline projection.
/// </summary>
public sealed class ProjectionPropertyTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private Task<List<StoredEvent>> Append(string run, List<InputEvent> inputs, int batches) => Append(DataSource, run, inputs, batches);

    /// <summary>Decides and appends a run in batches; with <paramref name="reload"/> each batch through a new store, so the projection folds back the rows that hold instead of its cached views.</summary>
    internal static async Task<List<StoredEvent>> Append(Npgsql.NpgsqlDataSource dataSource, string run, List<InputEvent> inputs, int batches, bool reload = false)
    {
        EventStore NewStore() => new(dataSource, TimeProvider.System, [new ProjectionStore(dataSource)]);
        var store = NewStore();
        var host = (HostDescribed)inputs[0];
        var state = Engine.Start(Policies.DefaultFor(host));
        long seq = 0;
        var size = (inputs.Count + batches - 1) / batches;
        foreach (var chunk in inputs.Chunk(size))
        {
            var batch = new List<NewEvent>();
            foreach (var e in chunk)
            {
                seq++;
                batch.Add(new NewEvent(e, 1_000 * seq));
                foreach (var d in Engine.Step(state, seq, e))
                {
                    seq++;
                    batch.Add(new NewEvent(d, 1_000 * (seq - 1)));
                }
            }

            store = reload ? NewStore() : store;
            var r = await store.AppendAsync(run, batch);
            Assert.Equal(AppendStatus.Appended, r.Status);
        }

        var all = new List<StoredEvent>();
        await foreach (var e in store.ReadAsync(run))
        {
            all.Add(e);
        }

        return all;
    }

    private static HashSet<(string, long, long, string)> Key(IEnumerable<TemporalRow> rows) =>
        rows.Select(r => (r.Projection, r.Lo, r.Hi, Canonical(r.Data))).ToHashSet();

    private static (long Lo, long Hi, long FromSeq, string Data)? Point(TemporalRow? row) =>
        row is null ? null : (row.Lo, row.Hi, row.FromSeq, Canonical(row.Data));

    /// <summary>Compare the data, not the text (key order and spacing are the serializer's, not the contract; a stage-2 row's compact array is ordered by contract).</summary>
    private static string Canonical(string json)
    {
        var parsed = System.Text.Json.Nodes.JsonNode.Parse(json)!;
        if (parsed is System.Text.Json.Nodes.JsonArray array)
        {
            return string.Join(",", array.Select(e => e is System.Text.Json.Nodes.JsonObject o ? "{" + Canonical(o.ToJsonString()) + "}" : e?.ToJsonString() ?? "null"));
        }

        var node = parsed.AsObject();
        return string.Join(",", node.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value?.ToJsonString()}"));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public async Task For_every_prefix_the_projected_state_equals_the_state_folded_in_memory(int seed)
    {
        var run = $"prop{seed}";
        var stored = await Append(run, RandomRun.Generate(seed, 250), batches: 7);
        var queries = new TemporalQueries(DataSource);
        var fold = new RunProjections();
        var rng = new Random(seed);
        var checkedRows = 0;
        var probed = 0;
        var seen = new HashSet<TemporalRow>();
        foreach (var e in stored)
        {
            fold.Apply(e.Recorded);
            // The coarse cells are not among the rows a point query gives: Stage2CellsTests compare them.
            var current = fold.Current().Where(r => !Stage2Cells.IsCells(r.Projection)).ToList();
            var expected = Key(current);
            var actual = Key(await queries.RowsAtAsync(run, e.Seq));
            Assert.True(expected.SetEquals(actual), $"seed {seed}, seq {e.Seq} ({e.Type}): {expected.Except(actual).Count()} rows only in memory, {actual.Except(expected).Count()} only in the database");
            checkedRows += actual.Count;

            // A point and a gpa range starting inside a row (closed rows through the box index, open ones by address).
            var stage2 = current.Where(r => r.Projection == RunProjections.Stage2Name).ToList();
            seen.UnionWith(stage2);
            if (stage2.Count == 0)
            {
                continue;
            }

            var pick = stage2[rng.Next(stage2.Count)];
            var at = (ulong)(pick.Lo + rng.NextInt64(pick.Hi - pick.Lo));
            var gap = (ulong)stage2.Max(r => r.Hi) + (ulong)rng.Next(1, 1 << 20);
            foreach (var address in new[] { at, gap })
            {
                var want = stage2.SingleOrDefault(r => (ulong)r.Lo <= address && (ulong)r.Hi > address);
                var got = await queries.RowAtAsync(run, RunProjections.Stage2Name, address, e.Seq);
                Assert.Equal(Point(want), Point(got));
                probed += want is null ? 0 : 1;
            }

            var to = at + (ulong)rng.NextInt64(1, 1L << 32);
            bool ByGpa(string p) => p == RunProjections.Stage2Name || p == RunProjections.AttributesName || p.StartsWith("memslots/", StringComparison.Ordinal);
            var inRange = Key(current.Where(r => !ByGpa(r.Projection) || ((ulong)r.Lo < to && (ulong)r.Hi > at)));
            var ranged = Key(await queries.RowsAtAsync(run, e.Seq, at, to));
            Assert.True(inRange.SetEquals(ranged), $"seed {seed}, seq {e.Seq}, range [{at:x}, {to:x}): {inRange.Except(ranged).Count()} rows only in memory, {ranged.Except(inRange).Count()} only in the database");
        }

        Assert.True(checkedRows > 0);
        Assert.True(probed > 0);
        Assert.Contains(fold.Current(), r => r.Projection == RunProjections.Stage2Name);

        // The history of an address: every stage-2 row that ever held over it, closed and open, oldest first.
        foreach (var row in seen.Take(12))
        {
            var address = (ulong)(row.Lo + (row.Hi - row.Lo) / 2);
            var expected = seen.Where(r => (ulong)r.Lo <= address && (ulong)r.Hi > address).Select(r => (r.Lo, r.Hi, r.FromSeq)).ToHashSet();
            var history = await queries.RowsCoveringAsync(run, [(RunProjections.Stage2Name, address)]);
            Assert.True(expected.SetEquals(history.Select(r => (r.Lo, r.Hi, r.FromSeq))), $"seed {seed}, history of {address:x}");
            Assert.Equal(history.OrderBy(r => r.FromSeq).Select(r => r.FromSeq), history.Select(r => r.FromSeq));
        }
        Assert.Contains(fold.Current(), r => r.Projection.StartsWith("memslots/", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(5)]
    [InlineData(6)]
    public async Task A_rebuild_gives_the_same_rows_as_the_inline_projection_and_resumes_after_a_crash(int seed)
    {
        var run = $"rebuild{seed}";
        var stored = await Append(run, RandomRun.Generate(seed, 300), batches: 5);
        var queries = new TemporalQueries(DataSource);
        var inline = new List<HashSet<(string, long, long, string)>>();
        var ranged = new List<HashSet<(string, long, long, string)>>();
        const ulong from = 0x1004000, to = 0x2800000; // from inside slot 1 into slot 2
        foreach (var e in stored)
        {
            inline.Add(Key(await queries.RowsAtAsync(run, e.Seq)));
            ranged.Add(Key(await queries.RowsAtAsync(run, e.Seq, from, to)));
        }

        Assert.Contains(ranged, r => r.Any(x => x.Item1 == RunProjections.Stage2Name));

        // A rebuild that dies after its first chunk, then one that resumes from the checkpoint.
        var store = new EventStore(DataSource, TimeProvider.System);
        using var crash = new CancellationTokenSource();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            new Rebuilder(store, chunk: 40, checkpointFactor: 0).RebuildAsync(run, (seq, _) => crash.Cancel(), crash.Token));
        Assert.Equal(1, await ScalarAsync("select active_gen from projection_generations where run_id = $1", run));
        var resumed = await new Rebuilder(store, chunk: 40, checkpointFactor: 0, splitAt: seed % 2 == 0 ? 2 : int.MaxValue).RebuildAsync(run);
        Assert.True(resumed.Resumed);
        Assert.Equal(2, resumed.Generation);

        for (var i = 0; i < stored.Count; i++)
        {
            Assert.True(inline[i].SetEquals(Key(await queries.RowsAtAsync(run, stored[i].Seq))), $"seq {stored[i].Seq}");
            Assert.True(ranged[i].SetEquals(Key(await queries.RowsAtAsync(run, stored[i].Seq, from, to))), $"seq {stored[i].Seq}, gpa range");
        }

        Assert.Equal(0, await ScalarAsync("select count(*) from projection_rows where run_id = $1 and gen <> 2", run));
    }

    [Fact]
    public async Task A_rebuild_interrupted_before_migration_0009_resumes_after_it_with_the_new_indexes()
    {
        var cs = await TestDatabase.CreateSchemaAsync("upgrade", through: "0008_events_fold");
        try
        {
            await using var ds = Npgsql.NpgsqlDataSource.Create(cs);

            // The rows this build appends are compact records with a null payload: that much of migration 0010 first.
            await Exec(ds, "alter table events alter column payload drop not null");

            // Nor does it write a recorded_at (migration 0020 drops it).
            await Exec(ds, "alter table events alter column recorded_at drop not null");
            const string run = "upgrade";

            // Its leaves have no row times (migration 0019): the run's first leaf is made as the older build made it.
            var first = Partitions.LeafName(run, 1);
            await Exec(ds, $"create table {first} (like projection_rows including defaults, constraint ck_{first} check (run_id = '{run}' and gen = 1))");
            await Exec(ds, $"alter table projection_rows attach partition {first} for values from ('{run}', 1) to ('{run}', 2)");
            var stored = await Append(ds, run, RandomRun.Generate(9, 300), batches: 4);
            var queries = new TemporalQueries(ds);
            var before = new List<HashSet<(string, long, long, string)>>();
            foreach (var e in stored)
            {
                before.Add(Key(await queries.RowsAtAsync(run, e.Seq)));
            }

            // A rebuild dies after its first chunk, its leaf detached with the box index an older build gave it.
            var store = new EventStore(ds, TimeProvider.System);
            using var crash = new CancellationTokenSource();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
                new Rebuilder(store, chunk: 40, checkpointFactor: 0).RebuildAsync(run, (_, _) => crash.Cancel(), crash.Token));
            var leaf = Partitions.LeafName(run, 2);
            await Exec(ds, $"drop index ix_{leaf}; drop index ixo_{leaf}; drop index ixf_{leaf}; create index ix_{leaf} on {leaf} using gist (projection_span(lo, hi, from_seq, to_seq))");

            // 0009 first; the migrations after it (each with tests of its own) follow.
            Assert.Equal("0009_open_rows_btree", (await Migrator.MigrateAsync(ds))[0]);
            var resumed = await new Rebuilder(store, chunk: 40, checkpointFactor: 0).RebuildAsync(run);
            Assert.True(resumed.Resumed);
            for (var i = 0; i < stored.Count; i++)
            {
                Assert.True(before[i].SetEquals(Key(await queries.RowsAtAsync(run, stored[i].Seq))), $"seq {stored[i].Seq}");
            }

            // Attaching found an index for each of the parent's and built none beside them.
            await using var cmd = ds.CreateCommand($"""
                select string_agg(c.relname || ':' || (select p.relname from pg_inherits h join pg_class p on p.oid = h.inhparent where h.inhrelid = c.oid), ' ' order by c.relname)
                from pg_index i join pg_class c on c.oid = i.indexrelid where i.indrelid = '{leaf}'::regclass
                """);
            Assert.Equal(
                $"ix_{leaf}:ix_projection_rows_closed ixc_{leaf}:ix_projection_rows_cells ixf_{leaf}:ix_projection_rows_open_from ixo_{leaf}:ix_projection_rows_open ixs_{leaf}:ix_projection_rows_small",
                (string?)await cmd.ExecuteScalarAsync());
        }
        finally
        {
            await TestDatabase.DropSchemaAsync(cs);
        }
    }

    private static async Task Exec(Npgsql.NpgsqlDataSource ds, string sql)
    {
        await using var cmd = ds.CreateCommand(sql);
        await cmd.ExecuteNonQueryAsync();
    }
}
