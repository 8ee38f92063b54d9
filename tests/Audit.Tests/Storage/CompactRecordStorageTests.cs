using System.Text.Json;
using Audit.Domain.Events;
using Audit.Projections.Serialization;
using Audit.Projections.Storage;
using Audit.Projections.Temporal;
using Audit.Tests.Cli;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Storage;

/// <summary>
/// Version-1 rows (jsonb payloads with inline and interned steps, as the release before ADR 0013 wrote them:
/// Storage/V1 holds the demo's gh and pvm runs copied out of its database) read as before, and the same events
/// stored again as version-2 compact records read back, explain and export the same.
/// </summary>
public sealed class CompactRecordStorageTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private static string V1Dir => Path.Combine(Paths.Repo, "tests", "Audit.Tests", "Storage", "V1");

    /// <summary>Copies a demo run's rows, steps and run row as they were stored, under a run id of this test's own.</summary>
    private async Task<string> LoadV1Async(string demoRun)
    {
        var run = $"{demoRun}-v1-{Guid.NewGuid():N}";
        await using var conn = await DataSource.OpenConnectionAsync();
        // The events were dumped with their recorded_at (the 6th column), which migration 0020 dropped.
        foreach (var (file, table, dropColumn) in new[] { ("demo-runs.tsv", "runs", -1), ("demo-events.tsv", "events", 5), ("demo-steps.tsv", "explanation_steps", -1) })
        {
            var columns = table == "events" ? " (run_id, seq, type, version, ts_ns, payload, fold)" : "";
            await using var copy = await conn.BeginTextImportAsync($"copy {table}{columns} from stdin");
            foreach (var line in File.ReadLines(Path.Combine(V1Dir, file)).Where(l => l.StartsWith(demoRun + "\t", StringComparison.Ordinal)))
            {
                var fields = (run + line[demoRun.Length..]).Split('\t').Where((_, i) => i != dropColumn);
                await copy.WriteLineAsync(string.Join('\t', fields));
            }
        }

        return run;
    }

    private static async Task<List<StoredEvent>> ReadAllAsync(EventStore store, string run)
    {
        var list = new List<StoredEvent>();
        await foreach (var e in store.ReadAsync(run))
        {
            list.Add(e);
        }

        return list;
    }

    /// <summary>Stores a run's events again through today's append, keeping unknown trace fields, under a new run id.</summary>
    private async Task<string> StoreAgainAsync(IReadOnlyList<StoredEvent> events, string run)
    {
        var again = run.Replace("-v1-", "-v2-", StringComparison.Ordinal);
        var batch = events.Select(e => new NewEvent(e.Event, e.TsNs, EventSerializer.ExtrasOf(e.Event, e.Payload))).ToList();
        Assert.Equal(AppendStatus.Appended, (await Store().AppendAsync(again, batch, 0)).Status);
        return again;
    }

    [Theory]
    [InlineData("gh")]
    [InlineData("pvm")]
    public async Task Version_1_rows_of_the_demo_read_back_as_the_events_they_were_once_stored_again_as_version_2(string demoRun)
    {
        var v1 = await LoadV1Async(demoRun);
        var old = await ReadAllAsync(Store(), v1);
        Assert.Contains(old, e => e.Event is FaultResolved { Explanation.Count: > 0 });
        Assert.Equal(0, await ScalarAsync("select count(*) from events where run_id = $1 and version <> 1", v1));

        var v2 = await StoreAgainAsync(old, v1);
        var again = await ReadAllAsync(Store(), v2);

        Assert.Equal(old.Select(e => (e.Seq, e.Type, e.TsNs, e.Event)), again.Select(e => (e.Seq, e.Type, e.TsNs, e.Event)));

        // Faults and decisions are records without a payload; an export prints the same lines from either run.
        Assert.Equal(
            await ScalarAsync("select count(*) from events where run_id = $1 and type in ('guest_faulted', 'fault_resolved')", v1),
            await ScalarAsync("select count(*) from events where run_id = $1 and payload is null and version = 2", v2));
        Assert.Equal(old.Select(e => e.Payload).Where((_, i) => old[i].Event is InputEvent), again.Select(e => e.Payload).Where((_, i) => again[i].Event is InputEvent));
        Assert.Equal(old.Where(e => e.Event is GuestFaulted).Select(e => e.StoredPayload), again.Where(e => e.Event is GuestFaulted).Select(e => e.Payload));

        // A point read and a fold read give the same events from both forms.
        var seqs = old.Where(e => e.Event is FaultResolved).Select(e => e.Seq).ToList();
        var points = await Store().GetAsync(v2, seqs);
        Assert.All(old.Where(e => e.Event is FaultResolved), e => Assert.Equal(e.Event, points[e.Seq].Event));
        Assert.Equal(
            Store().ReadForFold(v1, 0, long.MaxValue).Select(r => (r.Seq, r.Event)).ToList(),
            Store().ReadForFold(v2, 0, long.MaxValue).Select(r => (r.Seq, r.Event)).ToList());
    }

    [Fact]
    public async Task Why_on_a_version_1_run_answers_word_for_word_what_it_answers_once_stored_again_as_version_2()
    {
        var v1 = await LoadV1Async("gh");
        var old = await ReadAllAsync(Store(), v1);
        var v2 = await StoreAgainAsync(old, v1);
        await new Rebuilder(Store()).RebuildAsync(v1);
        await new Rebuilder(Store()).RebuildAsync(v2);

        var gpas = old.Select(e => e.Event).OfType<GuestFaulted>().Select(f => f.Gpa.ToString()).Distinct().ToList();
        Assert.True(gpas.Count >= 5, $"only {gpas.Count} faulted addresses in the demo run");
        var explained = 0;
        foreach (var gpa in gpas)
        {
            var before = await CliRunner.JsonAsync(ConnectionString, "why", v1, gpa);
            var after = await CliRunner.JsonAsync(ConnectionString, "why", v2, gpa);
            Assert.Equal(Without(before, "run"), Without(after, "run"));
            explained += before.GetProperty("explanation").GetArrayLength() > 0 ? 1 : 0;
        }

        Assert.True(explained >= 3, $"only {explained} of {gpas.Count} answers had an explanation to compare");
    }

    [Fact]
    public async Task A_timeline_counts_errors_and_memory_fault_exits_from_records_as_from_payloads()
    {
        var v1 = await LoadV1Async("pvm");
        var v2 = await StoreAgainAsync(await ReadAllAsync(Store(), v1), v1);
        var density = new Audit.Projections.Timeline.EventDensity(DataSource);

        var before = await density.BucketsAsync(v1, 484, null, null, 16, byTime: false);
        var after = await density.BucketsAsync(v2, 484, null, null, 16, byTime: false);

        Assert.Equal(before, after);
        Assert.True(before.Sum(b => b.Errors + b.MemoryFaultExits) > 0, "the pvm run has no refused fault or memory-fault exit to count");
    }

    [Theory]
    [InlineData(7)]
    [InlineData(16)]
    [InlineData(100)]
    [InlineData(484)]
    [InlineData(1000)]
    public async Task Seq_slices_of_a_large_run_from_its_seqs_and_marker_rows_equal_those_of_a_scan_of_every_event(int buckets)
    {
        var v1 = await LoadV1Async("pvm");
        var v2 = await StoreAgainAsync(await ReadAllAsync(Store(), v1), v1);
        var density = new Audit.Projections.Timeline.EventDensity(DataSource);
        foreach (var run in new[] { v1, v2 })
        {
            var scanned = await density.BucketsAsync(run, 484, null, null, buckets, byTime: false);
            var counted = await density.BucketsAsync(run, 484, null, null, buckets, byTime: false, scanLimit: 0);

            Assert.Equal(scanned, counted);
            Assert.True(counted.Sum(b => b.Errors + b.MemoryFaultExits + b.Unmaps) > 0, "nothing marked to compare");
        }
    }

    [Fact]
    public async Task The_markers_of_a_run_are_read_through_their_own_indexes_whose_predicates_are_the_codes()
    {
        // Without a sequential scan to fall back on, as on a large run: a small table is read whole however its indexes match.
        await using var conn = await DataSource.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync();
        await using (var off = new Npgsql.NpgsqlCommand("set local enable_seqscan = off", conn, tx))
        {
            await off.ExecuteNonQueryAsync();
        }

        // Made by 0018, again by 0021 (on the packed table), spelled the same each time.
        var migrations = new[] { "0018_event_markers_index.sql", "0021_events_packed_columns.sql" }
            .Select(f => File.ReadAllText(Path.Combine(Paths.Repo, "migrations", f))).ToList();
        foreach (var (predicate, index) in new[]
        {
            (Audit.Projections.Timeline.EventDensity.KindMarkers, "ix_events_marker_kinds"),
            (Audit.Projections.Timeline.EventDensity.DecisionMarkers, "ix_events_marker_decisions"),
        })
        {
            await using var cmd = new Npgsql.NpgsqlCommand($"explain select seq from events where run_id = 'x' and {predicate}", conn, tx);
            Assert.Contains(index, string.Join("\n", await ReadLinesAsync(cmd)), StringComparison.Ordinal);
            Assert.All(migrations, m => Assert.Contains(predicate, m, StringComparison.Ordinal));
        }

        await tx.RollbackAsync();
    }

    private static async Task<List<string>> ReadLinesAsync(Npgsql.NpgsqlCommand cmd)
    {
        var lines = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
        {
            lines.Add(r.GetString(0));
        }

        return lines;
    }

    private static string Without(JsonElement body, string property) =>
        JsonSerializer.Serialize(body.EnumerateObject().Where(p => p.Name != property).ToDictionary(p => p.Name, p => p.Value));
}
