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
public sealed class ProjectionPropertyTests : DatabaseTest
{
    private async Task<List<StoredEvent>> Append(string run, List<InputEvent> inputs, int batches)
    {
        var projections = new ProjectionStore(DataSource);
        var store = new EventStore(DataSource, TimeProvider.System, [projections]);
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

    /// <summary>Compare the data, not the text (key order and spacing are the serializer's, not the contract).</summary>
    private static string Canonical(string json)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(json)!.AsObject();
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
        var checkedRows = 0;
        foreach (var e in stored)
        {
            fold.Apply(e.Recorded);
            var expected = Key(fold.Current());
            var actual = Key(await queries.RowsAtAsync(run, e.Seq));
            Assert.True(expected.SetEquals(actual), $"seed {seed}, seq {e.Seq} ({e.Type}): {expected.Except(actual).Count()} rows only in memory, {actual.Except(expected).Count()} only in the database");
            checkedRows += actual.Count;
        }

        Assert.True(checkedRows > 0);
        Assert.Contains(fold.Current(), r => r.Projection == RunProjections.Stage2Name);
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
        foreach (var e in stored)
        {
            inline.Add(Key(await queries.RowsAtAsync(run, e.Seq)));
        }

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
        }

        Assert.Equal(0, await ScalarAsync("select count(*) from projection_rows where run_id = $1 and gen <> 2", run));
    }
}
