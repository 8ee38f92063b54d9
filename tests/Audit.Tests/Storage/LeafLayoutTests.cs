using Audit.Projections.Temporal;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Storage;

/// <summary>ADR 0017: a leaf orders its columns to pack (8-byte columns first) and still attaches to the parent and reads through it.</summary>
public sealed class LeafLayoutTests(SchemaFixture schema) : DatabaseTest(schema)
{
    [Fact]
    public async Task An_appended_run_has_a_leaf_with_its_eight_byte_columns_first_read_through_the_parent()
    {
        const string run = "leaf-layout";
        await LeafVacuumSettingsTests.AppendDecidedAsync(DataSource, run, seed: 5, count: 60);

        await using var cmd = DataSource.CreateCommand(
            "select string_agg(attname, ',' order by attnum) from pg_attribute where attrelid = to_regclass($1) and attnum > 0 and not attisdropped");
        cmd.Parameters.Add(new() { Value = Partitions.LeafName(run, 1) });
        Assert.Equal("lo,hi,from_seq,to_seq,gen,run_id,projection,data", (string?)await cmd.ExecuteScalarAsync());
        Assert.True(await ScalarAsync("select count(*) from projection_rows where run_id = $1 and projection = 'stage2'", run) > 0);
    }
}
