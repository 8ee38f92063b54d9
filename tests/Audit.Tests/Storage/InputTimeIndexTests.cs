using Audit.Domain;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Projections.Storage;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Storage;

/// <summary>"The last seq at or before a time" from the time index over inputs only (migration 0011).</summary>
public sealed class InputTimeIndexTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private static NewEvent Fault(ulong gpa, long? ts) => new(new GuestFaulted(0, new Gpa(gpa), Access.Read, FaultKind.Translation), ts);

    private static NewEvent Decision(long input, long? ts) =>
        new(new FaultResolved(input, FaultOutcome.MmioExit, 0, null, "arm64/6.17", ValueList<ExplanationStep>.Empty), ts);

    [Fact]
    public async Task A_time_bound_ends_after_the_decisions_of_the_last_input_at_or_before_it()
    {
        var run = $"times-{Guid.NewGuid():N}";

        // Seqs: 1 fault @10, 2 its decision @10, 3 fault @20, 4 its decision @20, 5 untimed fault, 6 fault @30, 7 its decision @30.
        await Store().AppendAsync(run, [Fault(0x1000, 10), Decision(1, 10), Fault(0x2000, 20), Decision(3, 20), Fault(0x3000, null), Fault(0x4000, 30), Decision(6, 30)]);

        var store = Store();
        var bounds = new List<long>();
        foreach (var t in new[] { 5L, 10, 15, 20, 29, 30, long.MaxValue })
        {
            bounds.Add(await store.LastSeqAtOrBeforeAsync(run, t));
        }

        Assert.Equal([0L, 2L, 2L, 5L, 5L, 7L, 7L], bounds);
    }

    [Fact]
    public async Task The_time_bound_is_answered_from_the_input_time_index_whose_predicate_its_migrations_spell_the_same()
    {
        // Made by 0011, made again on the packed table by 0021: each spells it the same.
        foreach (var file in new[] { "0011_input_time_index.sql", "0021_events_packed_columns.sql" })
        {
            var migration = await File.ReadAllTextAsync(Path.Combine(Paths.Repo, "migrations", file));
            Assert.Contains("where " + EventStore.InputTimes, string.Join(" ", migration.Split('\n').Select(l => l.Trim())), StringComparison.Ordinal);
        }

        await using var conn = await DataSource.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync();
        await using (var off = new Npgsql.NpgsqlCommand("set local enable_seqscan = off; set local enable_bitmapscan = off", conn, tx))
        {
            await off.ExecuteNonQueryAsync();
        }

        await using var explain = new Npgsql.NpgsqlCommand($"explain select min(seq) - 1 from events where run_id = 'r' and ts_ns > 5 and {EventStore.InputTimes}", conn, tx);
        var plan = string.Join("\n", await ReadAllAsync(explain));
        Assert.Contains("ix_events_input_ts", plan, StringComparison.Ordinal);
    }

    private static async Task<List<string>> ReadAllAsync(Npgsql.NpgsqlCommand cmd)
    {
        var lines = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            lines.Add(r.GetString(0));
        }

        return lines;
    }
}
