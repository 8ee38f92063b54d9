using Audit.Api.Features.Ingest;
using Audit.Domain;
using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Projections.Serialization;
using Audit.Projections.Storage;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Storage;

/// <summary>A writer in a new process continues a stored run from its saved engine state, folding only the inputs after it.</summary>
public sealed class EngineCheckpointTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private static readonly List<TraceEvent> Gh = SampleRuns.Traced("gh200-gpu-passthrough.ndjson");

    private static string NewRun() => "ckpt-" + Guid.NewGuid().ToString("N")[..8];

    // A writer of its own is what a new process has: nothing of the run in memory.
    private RunWriter Writer(int checkpointEvery = 1) => new(Store(), checkpointEvery);

    // One process: a writer of its own that appends, then ends, writing the engine states it began to save.
    private async Task<RunWriter.Outcome> AppendAsync(string run, IReadOnlyList<TraceEvent> inputs, int checkpointEvery = 1)
    {
        await using var writer = Writer(checkpointEvery);
        return await writer.AppendAsync(run, inputs, null, null, null, default);
    }

    [Fact]
    public async Task Saves_of_one_run_land_in_order_and_the_later_state_stays()
    {
        var run = NewRun();
        await using var writer = Writer();
        await writer.AppendAsync(run, Gh[..7], null, null, null, default);
        var last = await writer.AppendAsync(run, Gh[7..], null, null, null, default);
        await writer.DrainAsync();

        Assert.Equal(last.Result!.Version, await ScalarAsync("select version from engine_checkpoints where run_id = $1", run));
    }

    [Fact]
    public async Task An_append_saves_the_engine_state_at_the_runs_new_version()
    {
        var run = NewRun();
        var outcome = await AppendAsync(run, Gh);

        Assert.Equal(outcome.Result!.Version, await ScalarAsync("select version from engine_checkpoints where run_id = $1", run));
    }

    [Fact]
    public async Task Small_appends_below_the_threshold_save_nothing()
    {
        var run = NewRun();
        await AppendAsync(run, Gh, checkpointEvery: 10_000);

        Assert.Equal(0, await ScalarAsync("select count(*) from engine_checkpoints where run_id = $1", run));
    }

    [Fact]
    public async Task A_run_ingested_in_two_parts_by_two_processes_stores_what_one_ingest_would()
    {
        var whole = NewRun();
        await AppendAsync(whole, Gh);
        var parts = NewRun();
        await AppendAsync(parts, Gh[..7]);
        await AppendAsync(parts, Gh[7..]);

        Assert.Equal(await EventsAsync(whole), await EventsAsync(parts));
    }

    [Fact]
    public async Task A_writer_whose_kept_state_another_process_overtook_decides_again_from_the_stored_run()
    {
        // The first writer keeps the run's state after its append and does not read the run's summary again;
        // the second process's append in between makes that state stale, and the version check must catch it.
        var whole = NewRun();
        await AppendAsync(whole, Gh);
        var run = NewRun();
        await using var first = Writer();
        await first.AppendAsync(run, Gh[..5], null, null, null, default);
        await AppendAsync(run, Gh[5..10]);
        var last = await first.AppendAsync(run, Gh[10..], null, null, null, default);

        Assert.Equal(AppendStatus.Appended, last.Result!.Status);
        Assert.Equal(await EventsAsync(whole), await EventsAsync(run));
    }

    [Fact]
    public async Task A_kept_state_behind_the_version_the_caller_expects_is_not_used()
    {
        // The caller knows the run moved on (another process appended) and says so: the writer's kept state is
        // older than that version, so it must decide from the stored run, not from what it kept.
        var run = NewRun();
        await using var writer = Writer();
        await writer.AppendAsync(run, Gh[..5], null, null, null, default);
        var other = await AppendAsync(run, Gh[5..10]);

        var last = await writer.AppendAsync(run, Gh[10..], null, other.Result!.Version, null, default);

        Assert.Equal(AppendStatus.Appended, last.Result!.Status);
        var whole = NewRun();
        await AppendAsync(whole, Gh);
        Assert.Equal(await EventsAsync(whole), await EventsAsync(run));
    }

    [Fact]
    public async Task The_saved_state_is_compressed_with_lz4_where_the_server_has_it()
    {
        var serverHasLz4 = await ScalarAsync("select count(*) from pg_settings where name = 'default_toast_compression' and 'lz4' = any(enumvals)");
        var columnUsesLz4 = await ScalarAsync("select count(*) from pg_attribute where attrelid = 'engine_checkpoints'::regclass and attname = 'state' and attcompression = 'l'");

        Assert.Equal(serverHasLz4, columnUsesLz4);
        Assert.Equal(1, serverHasLz4); // the PostgreSQL 15 that ./test.sh installs is built with lz4
    }

    [Fact]
    public async Task A_new_writer_decides_from_the_saved_state_not_from_a_refold()
    {
        // The run's saved state is replaced by an empty one at the same version: a writer that used it knows
        // no memslot, so the next fault finds none; a writer that refolded would map it.
        var run = NewRun();
        var setup = Gh.TakeWhile(e => e.Event is not GuestFaulted).ToList();
        var fault = Gh.First(e => e.Event is GuestFaulted);
        var stored = await AppendAsync(run, setup);
        var checkpoints = new EngineCheckpoints(DataSource, TimeProvider.System);
        await using (var cmd = DataSource.CreateCommand("update engine_checkpoints set state = $2 where run_id = $1"))
        {
            cmd.Parameters.Add(new() { Value = run });
            cmd.Parameters.Add(new() { Value = EngineStateCodec.Encode(Engine.Start(Policies.Find(stored.Policy!)!)) });
            await cmd.ExecuteNonQueryAsync();
        }

        await AppendAsync(run, [fault]);

        var decided = (await EventsAsync(run)).OfType<FaultResolved>().Single();
        Assert.Null(decided.Mapping);
        Assert.NotNull(await checkpoints.LoadAsync(run, Policies.Find(stored.Policy!)!, default));
    }

    [Fact]
    public async Task A_state_saved_under_another_policy_is_not_used()
    {
        var run = NewRun();
        var stored = await AppendAsync(run, Gh);
        var other = Policies.Find("arm64/5.15")!;

        Assert.Null(await new EngineCheckpoints(DataSource, TimeProvider.System).LoadAsync(run, other, default));
        Assert.NotNull(await new EngineCheckpoints(DataSource, TimeProvider.System).LoadAsync(run, Policies.Find(stored.Policy!)!, default));
    }

    private async Task<List<RunEvent>> EventsAsync(string run)
    {
        var events = new List<RunEvent>();
        await foreach (var e in Store().ReadAsync(run))
        {
            events.Add(e.Event);
        }

        return events;
    }
}
