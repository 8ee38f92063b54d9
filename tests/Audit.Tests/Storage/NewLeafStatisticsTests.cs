using Audit.Domain;
using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Projections.Storage;
using Audit.Projections.Temporal;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Storage;

/// <summary>
/// A leaf the inline projection makes is analyzed by the first append that writes rows to it: without
/// statistics the planner closed rows by reading every open row of the leaf (ProjectionStore.AnalyzeNewLeafAsync).
/// </summary>
public sealed class NewLeafStatisticsTests(SchemaFixture schema) : DatabaseTest(schema)
{
    [Fact]
    public async Task The_first_append_of_a_new_run_gives_its_leaf_statistics()
    {
        const string run = "leaf-stats-first";
        await Projections.ProjectionPropertyTests.Append(DataSource, run, Projections.RandomRun.Generate(5, 40), batches: 1);

        var (tuples, columns) = await StatisticsAsync(Partitions.LeafName(run, 1));
        Assert.True(tuples > 0, $"reltuples {tuples}: the leaf was not analyzed");
        Assert.Contains("run_id", columns);
        Assert.Contains("to_seq", columns);
    }

    [Fact]
    public async Task An_append_that_writes_no_rows_leaves_the_analyze_to_the_first_that_does()
    {
        const string run = "leaf-stats-later";
        var inputs = Projections.RandomRun.Generate(6, 40);
        var store = new EventStore(DataSource, TimeProvider.System, [new ProjectionStore(DataSource)]);
        var state = Engine.Start(Policies.DefaultFor((HostDescribed)inputs[0]));
        var seq = 0L;

        // The host alone changes no projection row; the rest of the run maps pages.
        var batches = new[] { inputs.Take(1).ToList(), inputs.Skip(1).ToList() };
        for (var b = 0; b < batches.Length; b++)
        {
            var events = new List<NewEvent>();
            foreach (var input in batches[b])
            {
                var at = ++seq;
                events.Add(new NewEvent(input, at));
                foreach (var decision in Engine.Step(state, at, input))
                {
                    seq++;
                    events.Add(new NewEvent(decision, at));
                }
            }

            Assert.Equal(AppendStatus.Appended, (await store.AppendAsync(run, events)).Status);
            if (b == 0)
            {
                Assert.True((await StatisticsAsync(Partitions.LeafName(run, 1))).Tuples < 0, "a leaf with no rows was analyzed");
            }
        }

        Assert.True((await StatisticsAsync(Partitions.LeafName(run, 1))).Tuples > 0, "the append that wrote the first rows did not analyze the leaf");
    }

    /// <summary>The leaf's row estimate (-1: never analyzed) and the columns it has statistics for.</summary>
    private async Task<(float Tuples, List<string> Columns)> StatisticsAsync(string leaf)
    {
        await using var cmd = DataSource.CreateCommand("""
            select c.reltuples, coalesce(array(select s.attname::text from pg_stats s where s.schemaname = n.nspname and s.tablename = c.relname order by 1), '{}')
            from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = $1::regclass
            """);
        cmd.Parameters.Add(new() { Value = leaf });
        await using var r = await cmd.ExecuteReaderAsync();
        Assert.True(await r.ReadAsync());
        return (r.GetFloat(0), [.. r.GetFieldValue<string[]>(1)]);
    }
}
