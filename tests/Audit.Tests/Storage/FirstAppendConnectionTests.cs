using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Projections.Storage;
using Audit.Projections.Temporal;
using Audit.Tests.Infrastructure;
using Npgsql;

namespace Audit.Tests.Storage;

/// <summary>
/// A new run's first append makes and attaches its projection leaf on the append's own connection, before
/// its transaction (ProjectionStore.PrepareAsync): it used to open a second connection for the DDL.
/// </summary>
public sealed class FirstAppendConnectionTests(SchemaFixture schema) : DatabaseTest(schema)
{
    [Fact]
    public async Task A_new_runs_first_append_needs_one_connection_and_attaches_its_leaf()
    {
        // A pool of one: a second connection wanted while the append holds the first times out.
        var cs = new NpgsqlConnectionStringBuilder(ConnectionString) { MaxPoolSize = 1, Timeout = 5 }.ConnectionString;
        await using var ds = NpgsqlDataSource.Create(cs);
        var store = new EventStore(ds, TimeProvider.System, [new ProjectionStore(ds)]);

        const string run = "first-append-one-connection";
        NewEvent[] events =
        [
            new(new HostDescribed(Arch.Arm64, "6.17.0", null, 4096, HostCaps.None)),
            new(new GuestFaulted(0, new Gpa(0x40000000), Access.Read, FaultKind.Translation)),
        ];
        var first = await store.AppendAsync(run, events, expectedVersion: 0);
        var second = await store.AppendAsync(run, [new(new GuestFaulted(0, new Gpa(0x40001000), Access.Read, FaultKind.Translation))], expectedVersion: 2);

        Assert.Equal(AppendStatus.Appended, first.Status);
        Assert.Equal(AppendStatus.Appended, second.Status);
        var (exists, attached) = await Partitions.StateAsync(await DataSource.OpenConnectionAsync(), null, run, 1, CancellationToken.None);
        Assert.True(exists && attached, "the run's leaf is not attached");
    }

    [Fact]
    public async Task Eight_new_runs_appending_at_once_each_attach_their_own_leaf()
    {
        var store = new EventStore(DataSource, TimeProvider.System, [new ProjectionStore(DataSource)]);
        var runs = Enumerable.Range(0, 8).Select(i => $"first-append-at-once-{i}").ToList();

        var results = await Task.WhenAll(runs.Select(run => store.AppendAsync(run, [new NewEvent(new GuestFaulted(0, new Gpa(0x40000000), Access.Write, FaultKind.Translation))], expectedVersion: 0)));

        Assert.All(results, r => Assert.Equal(AppendStatus.Appended, r.Status));
        await using var conn = await DataSource.OpenConnectionAsync();
        foreach (var run in runs)
        {
            var (exists, attached) = await Partitions.StateAsync(conn, null, run, 1, CancellationToken.None);
            Assert.True(exists && attached, $"{run}: leaf exists {exists}, attached {attached}");
        }
    }
}
