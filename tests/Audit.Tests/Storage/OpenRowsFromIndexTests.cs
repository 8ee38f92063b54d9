using Audit.Projections.Temporal;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Storage;

/// <summary>Migration 0022: each leaf indexes its open rows by the seq they opened at with BRIN, and a read through the indexes answers as a scan does.</summary>
public sealed class OpenRowsFromIndexTests(SchemaFixture schema) : DatabaseTest(schema)
{
    [Fact]
    public async Task The_leaf_indexes_its_open_rows_by_from_seq_with_brin_and_a_bitmap_read_answers_as_a_scan()
    {
        const string run = "open-from-brin";
        await Projections.ProjectionPropertyTests.Append(DataSource, run, Projections.RandomRun.Generate(7, 400), batches: 1);
        var leaf = Partitions.LeafName(run, 1);

        await using var conn = await DataSource.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync();
        // As on a large leaf: a small one is read whole however its indexes match (which of the two bitmaps the
        // planner takes on a few pages is its own choice; the 10M-event run's plan is in ADR 0017).
        await using (var off = new Npgsql.NpgsqlCommand("set local enable_seqscan = off; set local enable_indexscan = off", conn, tx))
        {
            await off.ExecuteNonQueryAsync();
        }

        // The leaf's part of the parent's index (attaching named it).
        await using (var am = new Npgsql.NpgsqlCommand("""
            select a.amname from pg_inherits h join pg_class c on c.oid = h.inhrelid join pg_am a on a.oid = c.relam
            join pg_index i on i.indexrelid = c.oid
            where h.inhparent = 'ix_projection_rows_open_from'::regclass and i.indrelid = to_regclass($1)
            """, conn, tx))
        {
            am.Parameters.Add(new() { Value = leaf });
            await using var r = await am.ExecuteReaderAsync();
            Assert.True(await r.ReadAsync(), "the leaf has no part of ix_projection_rows_open_from");
            Assert.Equal("brin", r.GetString(0));
        }

        // The indexes answer what a scan of the leaf answers, and there is something to answer.
        await using var count = new Npgsql.NpgsqlCommand($"select count(*) from {leaf} where to_seq is null and from_seq <= 40", conn, tx);
        var viaIndex = (long)(await count.ExecuteScalarAsync())!;
        Assert.True(viaIndex > 0, "no row opened by seq 40");
        await using var scan = new Npgsql.NpgsqlCommand($"select count(*) from {leaf} where to_seq is null and from_seq + 0 <= 40", conn, tx);
        Assert.Equal((long)(await scan.ExecuteScalarAsync())!, viaIndex);
    }
}
