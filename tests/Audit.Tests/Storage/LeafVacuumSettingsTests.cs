using Audit.Projections.Storage;
using Audit.Projections.Temporal;
using Audit.Tests.Infrastructure;
using Npgsql;

namespace Audit.Tests.Storage;

/// <summary>ADR 0016: a projection leaf is vacuumed at 1% of its rows dead, whether it was made before migration 0016 or after.</summary>
public sealed class LeafVacuumSettingsTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private const string Wanted = "autovacuum_vacuum_scale_factor=0.01 autovacuum_vacuum_threshold=20000 autovacuum_vacuum_cost_delay=0";

    [Fact]
    public async Task The_leaf_an_append_creates_is_vacuumed_at_one_percent_dead()
    {
        const string run = "leaf-vacuum-new";
        await Projections.ProjectionPropertyTests.Append(DataSource, run, Projections.RandomRun.Generate(3, 40), batches: 1);

        Assert.Equal(Wanted, await OptionsAsync(DataSource, Partitions.LeafName(run, 1)));
    }

    [Fact]
    public async Task A_leaf_made_before_migration_0016_gets_the_settings_when_it_runs()
    {
        var cs = await TestDatabase.CreateSchemaAsync("leafvac", through: "0014_engine_checkpoints");
        try
        {
            await using var ds = NpgsqlDataSource.Create(cs);
            var leaf = Partitions.LeafName("older", 1);
            await using (var create = ds.CreateCommand($"create table {leaf} (like projection_rows including defaults)"))
            {
                await create.ExecuteNonQueryAsync();
            }

            Assert.Equal("", await OptionsAsync(ds, leaf));
            await Migrator.MigrateAsync(ds);
            Assert.Equal(Wanted, await OptionsAsync(ds, leaf));
        }
        finally
        {
            await TestDatabase.DropSchemaAsync(cs);
        }
    }

    private static async Task<string> OptionsAsync(NpgsqlDataSource ds, string table)
    {
        await using var cmd = ds.CreateCommand("select coalesce(array_to_string(reloptions, ' '), '') from pg_class where oid = $1::regclass");
        cmd.Parameters.Add(new() { Value = table });
        return (string)(await cmd.ExecuteScalarAsync())!;
    }
}
