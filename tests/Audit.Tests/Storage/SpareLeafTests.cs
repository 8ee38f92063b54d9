using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Projections.Storage;
using Audit.Projections.Temporal;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Storage;

/// <summary>
/// Spare leaves (ADR 0005): a new run's leaf is a spare made ahead, renamed, bound to the run and attached, so its
/// first append builds no index; a store that keeps spares makes new ones after each it takes.
/// </summary>
public sealed class SpareLeafTests(SchemaFixture schema) : DatabaseTest(schema)
{
    [Fact]
    public async Task A_new_runs_leaf_is_a_spare_renamed_bound_to_the_run_and_attached_with_the_parents_indexes()
    {
        await using var conn = await DataSource.OpenConnectionAsync();
        await DropSparesAsync(conn);
        var spare = await Partitions.CreateSpareAsync(conn, CancellationToken.None);
        const string run = "spare-leaf-claimed";

        Assert.True(await Partitions.EnsureAttachedAsync(conn, run, 1, CancellationToken.None));

        var leaf = Partitions.LeafName(run, 1);
        Assert.DoesNotContain(spare, await Partitions.SparesAsync(conn, null, CancellationToken.None));
        Assert.Equal(0, await ScalarAsync("select count(*) from pg_class where relname like $1", spare + "%"));
        Assert.Equal(1, await ScalarAsync("select count(*) from pg_inherits where inhrelid = $1::regclass", leaf));
        // Each of its five indexes is a partition of one of the parent's: the attach built none of its own.
        Assert.Equal(5, await ScalarAsync("select count(*) from pg_index x join pg_inherits i on i.inhrelid = x.indexrelid where x.indrelid = $1::regclass", leaf));
        Assert.Equal(5, await ScalarAsync("select count(*) from pg_index where indrelid = $1::regclass", leaf));
        Assert.Equal(5, await ScalarAsync("select count(*) from pg_class c join pg_index x on x.indexrelid = c.oid where x.indrelid = $1::regclass and c.relname like '%' || $1", leaf));
        Assert.Equal(1, await ScalarAsync("select count(*) from pg_constraint where conrelid = $1::regclass and conname = 'ck_' || $1 and contype = 'c'", leaf));
    }

    [Fact]
    public async Task New_runs_taking_spares_at_once_take_one_each_and_build_the_rest()
    {
        await using (var conn = await DataSource.OpenConnectionAsync())
        {
            await DropSparesAsync(conn);
            await Partitions.CreateSpareAsync(conn, CancellationToken.None);
            await Partitions.CreateSpareAsync(conn, CancellationToken.None);
        }

        var runs = Enumerable.Range(0, 5).Select(i => $"spare-leaf-race-{i}").ToList();
        var made = await Task.WhenAll(runs.Select(run => Task.Run(async () =>
        {
            await using var conn = await DataSource.OpenConnectionAsync();
            return await Partitions.EnsureAttachedAsync(conn, run, 1, CancellationToken.None);
        })));

        Assert.All(made, Assert.True);
        await using var check = await DataSource.OpenConnectionAsync();
        Assert.Empty(await Partitions.SparesAsync(check, null, CancellationToken.None));
        foreach (var run in runs)
        {
            var leaf = Partitions.LeafName(run, 1);
            Assert.Equal(1, await ScalarAsync("select count(*) from pg_inherits where inhrelid = $1::regclass", leaf));
            Assert.Equal(5, await ScalarAsync("select count(*) from pg_index x join pg_inherits i on i.inhrelid = x.indexrelid where x.indrelid = $1::regclass", leaf));
        }
    }

    [Fact]
    public async Task A_store_that_keeps_spares_makes_them_again_after_a_new_run_took_one()
    {
        await using var projections = new ProjectionStore(DataSource, 3);
        var store = new EventStore(DataSource, TimeProvider.System, [projections]);
        await using var conn = await DataSource.OpenConnectionAsync();

        foreach (var run in new[] { "spare-leaf-kept-1", "spare-leaf-kept-2" })
        {
            var appended = await store.AppendAsync(run, [new NewEvent(new GuestFaulted(0, new Gpa(0x40000000), Access.Write, FaultKind.Translation))], expectedVersion: 0);
            Assert.Equal(AppendStatus.Appended, appended.Status);
            await projections.SparesMade;
            Assert.True((await Partitions.SparesAsync(conn, null, CancellationToken.None)).Count >= 3);
        }

        var (exists, attached) = await Partitions.StateAsync(conn, null, "spare-leaf-kept-2", 1, CancellationToken.None);
        Assert.True(exists && attached);
    }

    [Fact]
    public async Task The_bytes_counted_include_the_spares()
    {
        var before = (await Baselines.SizesAsync(DataSource, CancellationToken.None)).Projections;
        await using var conn = await DataSource.OpenConnectionAsync();
        await Partitions.CreateSpareAsync(conn, CancellationToken.None);

        Assert.True((await Baselines.SizesAsync(DataSource, CancellationToken.None)).Projections > before);
    }

    /// <summary>The class's tests share a schema: each that counts spares starts without any.</summary>
    private static async Task DropSparesAsync(Npgsql.NpgsqlConnection conn)
    {
        foreach (var spare in await Partitions.SparesAsync(conn, null, CancellationToken.None))
        {
            await using var drop = conn.CreateCommand();
            drop.CommandText = $"drop table {spare}";
            await drop.ExecuteNonQueryAsync();
        }
    }
}
