using Audit.Projections.Temporal;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Storage;

/// <summary>ADR 0017: the events table and every leaf order their columns to pack (8-byte columns first); a leaf still attaches to the parent and reads through it.</summary>
public sealed class PackedColumnsTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private async Task<string?> ColumnsAsync(string table)
    {
        await using var cmd = DataSource.CreateCommand(
            "select string_agg(attname, ',' order by attnum) from pg_attribute where attrelid = to_regclass($1) and attnum > 0 and not attisdropped");
        cmd.Parameters.Add(new() { Value = table });
        return (string?)await cmd.ExecuteScalarAsync();
    }

    [Fact]
    public async Task The_events_table_has_its_eight_byte_columns_first() =>
        Assert.Equal("seq,ts_ns,type,version,run_id,payload,fold", await ColumnsAsync("events"));

    [Fact]
    public async Task An_appended_run_has_a_leaf_with_its_eight_byte_columns_first_read_through_the_parent()
    {
        const string run = "leaf-layout";
        await Projections.ProjectionPropertyTests.Append(DataSource, run, Projections.RandomRun.Generate(5, 60), batches: 1);

        Assert.Equal("lo,hi,from_seq,to_seq,gen,run_id,projection,data", await ColumnsAsync(Partitions.LeafName(run, 1)));
        Assert.True(await ScalarAsync("select count(*) from projection_rows where run_id = $1 and projection = 'stage2'", run) > 0);
    }
}
