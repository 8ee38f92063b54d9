using Audit.Projections.Serialization;
using Audit.Projections.Storage;
using Audit.Tests.Infrastructure;
using Npgsql;

namespace Audit.Tests.Storage;

/// <summary>The events table stores a type as the enum of migration 0020: every registered type needs its label.</summary>
public sealed class StoredEventTypeTests(SchemaFixture schema) : DatabaseTest(schema)
{
    [Fact]
    public async Task Every_registered_event_type_is_a_label_of_the_stored_enum_and_no_label_is_unregistered()
    {
        await using var cmd = DataSource.CreateCommand("select unnest(enum_range(null::event_type))::text");
        var labels = new List<string>();
        await using (var r = await cmd.ExecuteReaderAsync())
        {
            while (await r.ReadAsync())
            {
                labels.Add(r.GetString(0));
            }
        }

        Assert.Equal(
            EventRegistry.Types.Select(t => t.StoredName).Order(StringComparer.Ordinal),
            labels.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_type_name_that_is_not_a_label_is_refused_by_the_table()
    {
        var run = $"enum-{Guid.NewGuid():N}";
        await using var cmd = DataSource.CreateCommand("insert into events (run_id, seq, type, version) values ($1, 1, 'no_such_event', 1)");
        cmd.Parameters.Add(new() { Value = run });
        var e = await Assert.ThrowsAsync<Npgsql.PostgresException>(() => cmd.ExecuteNonQueryAsync());
        Assert.Equal("22P02", e.SqlState);
    }

    [Fact]
    public async Task Events_stored_before_migration_0020_read_back_the_same_after_it()
    {
        var cs = await TestDatabase.CreateSchemaAsync("typeenum", through: "0019_projection_rows_without_times");
        try
        {
            await using var ds = NpgsqlDataSource.Create(cs);
            var dir = Path.Combine(Paths.Repo, "tests", "Audit.Tests", "Storage", "V1");
            var rows = File.ReadLines(Path.Combine(dir, "demo-events.tsv")).Where(l => l.StartsWith("gh\t", StringComparison.Ordinal)).ToList();
            await using (var conn = await ds.OpenConnectionAsync())
            {
                foreach (var (file, table) in new[] { ("demo-runs.tsv", "runs"), ("demo-events.tsv", "events"), ("demo-steps.tsv", "explanation_steps") })
                {
                    await using var copy = await conn.BeginTextImportAsync($"copy {table} from stdin");
                    foreach (var line in File.ReadLines(Path.Combine(dir, file)).Where(l => l.StartsWith("gh\t", StringComparison.Ordinal)))
                    {
                        await copy.WriteLineAsync(line);
                    }
                }
            }

            var before = await ReadAsync(new EventStore(ds, TimeProvider.System));
            await Migrator.MigrateAsync(ds);
            var after = await ReadAsync(new EventStore(ds, TimeProvider.System));

            Assert.Equal(rows.Count, after.Count);
            Assert.Equal(before.Select(e => (e.Seq, e.Type, e.Version, e.TsNs, e.Event)), after.Select(e => (e.Seq, e.Type, e.Version, e.TsNs, e.Event)));
        }
        finally
        {
            await TestDatabase.DropSchemaAsync(cs);
        }
    }

    private static async Task<List<StoredEvent>> ReadAsync(EventStore store)
    {
        var list = new List<StoredEvent>();
        await foreach (var e in store.ReadAsync("gh"))
        {
            list.Add(e);
        }

        return list;
    }
}
