using Audit.Projections.Temporal;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Storage;

/// <summary>Partitions.EnsureAttachedAsync: a new run's leaf is made and attached once, however many writers ask at once.</summary>
public sealed class LeafCreationTests(SchemaFixture schema) : DatabaseTest(schema)
{
    [Fact]
    public async Task Writers_asking_for_one_new_leaf_at_once_make_it_once_with_its_indexes_and_attach_it()
    {
        const string run = "leaf-made-once";

        var made = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            await using var conn = await DataSource.OpenConnectionAsync();
            return await Partitions.EnsureAttachedAsync(conn, run, 1, CancellationToken.None);
        })));

        Assert.Single(made, m => m);
        var leaf = Partitions.LeafName(run, 1);
        Assert.Equal(1, await ScalarAsync("select count(*) from pg_inherits where inhrelid = $1::regclass", leaf));
        Assert.Equal(5, await ScalarAsync("select count(*) from pg_index where indrelid = $1::regclass", leaf));
        Assert.False(await Partitions.EnsureAttachedAsync(DataSource, run, 1, CancellationToken.None));
    }
}
