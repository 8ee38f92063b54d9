using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Projections.Storage;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Storage;

/// <summary>The event store against a real PostgreSQL (one schema for this class).</summary>
public sealed class EventStoreTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private static NewEvent Fault(ulong gpa, long? ts = null) => new(new GuestFaulted(0, new Gpa(gpa), Access.Read, FaultKind.Translation), ts);

    [Fact]
    public async Task Appends_get_sequence_numbers_one_to_n_without_gaps()
    {
        var store = Store();
        var a = await store.AppendAsync("r1", [Fault(0x1000), Fault(0x2000)]);
        var b = await store.AppendAsync("r1", [Fault(0x3000)]);
        Assert.Equal((1, 2), (a.FirstSeq, a.LastSeq));
        Assert.Equal((3, 3), (b.FirstSeq, b.LastSeq));

        var seqs = new List<long>();
        await foreach (var e in store.ReadAsync("r1"))
        {
            seqs.Add(e.Seq);
        }

        Assert.Equal([1L, 2L, 3L], seqs);
        Assert.Equal(3, await ScalarAsync("select count(*) from events where run_id = $1", "r1"));
    }

    [Fact]
    public async Task Two_appends_with_the_same_expected_version_store_exactly_one()
    {
        var store = Store();
        await store.AppendAsync("race", [Fault(0x1000)]);

        var results = await Task.WhenAll(Enumerable.Range(0, 2).Select(i =>
            Task.Run(() => store.AppendAsync("race", [Fault(0x10000 + ((ulong)i * 0x1000))], expectedVersion: 1))));

        Assert.Single(results, r => r.Status == AppendStatus.Appended);
        Assert.Single(results, r => r.Status == AppendStatus.Conflict);
        Assert.Equal(2, await ScalarAsync("select count(*) from events where run_id = $1", "race"));
        Assert.Equal(2, await ScalarAsync("select version from runs where run_id = $1", "race"));
    }

    [Fact]
    public async Task Appends_racing_to_create_one_run_see_the_row_the_first_committed()
    {
        // The run's insert and its locking select go in one round trip as two statements: a select that shared the
        // insert's snapshot would find no row after waiting for the other append's insert to commit.
        var store = Store();
        for (var round = 0; round < 10; round++)
        {
            var run = "newrace" + round;
            var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(i =>
                Task.Run(() => store.AppendAsync(run, [Fault(0x10000 + ((ulong)i * 0x1000))], expectedVersion: 0))));

            Assert.Single(results, r => r.Status == AppendStatus.Appended);
            Assert.All(results.Where(r => r.Status != AppendStatus.Appended), r => Assert.Equal((AppendStatus.Conflict, 1L), (r.Status, r.Version)));
            Assert.Equal(1, await ScalarAsync("select count(*) from events where run_id = $1", run));
        }
    }

    [Fact]
    public async Task A_conflict_reports_the_current_version_and_stores_nothing()
    {
        var store = Store();
        await store.AppendAsync("c", [Fault(0x1000), Fault(0x2000)]);
        var r = await store.AppendAsync("c", [Fault(0x3000)], expectedVersion: 0);
        Assert.Equal(AppendStatus.Conflict, r.Status);
        Assert.Equal(2, r.Version);
        Assert.Equal(2, await ScalarAsync("select count(*) from events where run_id = $1", "c"));
    }

    [Fact]
    public async Task A_retried_batch_stores_nothing_and_returns_the_first_result()
    {
        var store = Store();
        var first = await store.AppendAsync("idem", [Fault(0x1000), Fault(0x2000)], batchKey: "k1");
        var again = await store.AppendAsync("idem", [Fault(0x1000), Fault(0x2000)], batchKey: "k1");
        Assert.Equal(AppendStatus.Appended, first.Status);
        Assert.Equal(AppendStatus.Duplicate, again.Status);
        Assert.Equal((first.FirstSeq, first.LastSeq, first.InputCount), (again.FirstSeq, again.LastSeq, again.InputCount));
        Assert.Equal(2, await ScalarAsync("select count(*) from events where run_id = $1", "idem"));
    }

    [Fact]
    public async Task Concurrent_retries_of_one_batch_store_it_once()
    {
        var store = Store();
        var results = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => store.AppendAsync("idem2", [Fault(0x1000)], batchKey: "same"))));
        Assert.Single(results, r => r.Status == AppendStatus.Appended);
        Assert.Equal(1, await ScalarAsync("select count(*) from events where run_id = $1", "idem2"));
    }

    [Fact]
    public async Task Reads_from_a_seq_up_to_a_seq_or_a_time()
    {
        var store = Store();
        await store.AppendAsync("t", [Fault(0x1000, 100), Fault(0x2000, 200), Fault(0x3000), Fault(0x4000, 300)]);

        async Task<List<long>> Seqs(long from = 1, long? to = null, long? ts = null)
        {
            var list = new List<long>();
            await foreach (var e in store.ReadAsync("t", from, to, ts))
            {
                list.Add(e.Seq);
            }

            return list;
        }

        Assert.Equal([2L, 3L, 4L], await Seqs(from: 2));
        Assert.Equal([1L, 2L], await Seqs(to: 2));

        // Time 250: the event at 200 and the untimed one after it, not the one at 300.
        Assert.Equal([1L, 2L, 3L], await Seqs(ts: 250));
        Assert.Equal([1L], await Seqs(ts: 100));
        Assert.Empty(await Seqs(ts: 50));
    }

    [Fact]
    public async Task Events_keep_their_time_type_and_payload_and_the_run_its_recording_time()
    {
        var clock = new FixedClock(new DateTimeOffset(2026, 11, 22, 12, 0, 0, TimeSpan.Zero));
        var store = Store(clock);
        var e = new MemslotSet(0, 0, new Gpa(0x40000000), 0x1000_0000, new Hva(0xffff40000000), MemslotFlags.KVM_MEM_READONLY, null, null, 0);
        await store.AppendAsync("p", [new NewEvent(e, 42, [new("vendor", "\"x\"")])]);
        var stored = await store.ReadAsync("p").SingleAsync();
        Assert.Equal(e, stored.Event);
        Assert.Equal(42, stored.TsNs);
        Assert.Equal(clock.GetUtcNow(), (await store.ListRunsAsync()).Single(r => r.RunId == "p").CreatedAt);
        Assert.Equal("memslot_set", stored.Type);
        Assert.Contains("\"vendor\": \"x\"", stored.Payload, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Runs_list_counts_and_time_span()
    {
        var store = Store();
        await store.AppendAsync("list-b", [Fault(0x1000, 5), Fault(0x2000, 9)], info: new RunInfo("arm64 6.17.2", null));
        await store.AppendAsync("list-a", [Fault(0x1000)]);

        // The class's other tests store runs of their own in this schema: only these two are looked at.
        var runs = (await store.ListRunsAsync()).Where(r => r.RunId.StartsWith("list-", StringComparison.Ordinal)).ToList();
        Assert.Equal(["list-a", "list-b"], runs.Select(r => r.RunId));
        var b = runs[1];
        Assert.Equal((2L, 2L, 5L, 9L, "arm64 6.17.2"), (b.EventCount, b.InputCount, b.FirstTsNs!.Value, b.LastTsNs!.Value, b.Host));
        Assert.Null(await store.GetRunAsync("missing"));
    }

    [Fact]
    public async Task A_fold_read_gives_the_same_events_from_the_fold_column_and_from_payloads_stored_before_it()
    {
        var store = Store();
        var decided = new FaultResolved(1, FaultOutcome.Mapped, 0, new Mapping(new Gpa(0x1000), 4096, Stage2MemType.Normal, null, Perms.R | Perms.W), "arm64/6.18",
            new([new ExplanationStep("arm64.user_mem_abort", "text", new([new Fact("vma", "x", 1)]))]));
        var slot = new MemslotSet(0, 0, new Gpa(0), 0x10000, new Hva(0x7f0000000000), MemslotFlags.None, null, null, 0);
        await store.AppendAsync("f", [new(slot), Fault(0x1000, 7), new(decided), Fault(0x2000)]);
        Assert.Equal(3, await ScalarAsync("select count(*) from events where run_id = $1 and fold is not null", "f"));

        var fromFold = store.ReadForFold("f", 0, 4).ToList();
        Assert.Equal(decided with { Explanation = Audit.Domain.ValueList<ExplanationStep>.Empty }, fromFold[2].Event);

        // As a run stored before migration 0008 (or by a newer fold format) reads: from the payloads. Faults and decisions
        // are compact records since ADR 0013, so their rows are first put back in the version-1 form such a run has.
        foreach (var (seq, e) in new (long, RunEvent)[] { (2, Fault(0x1000, 7).Event), (3, decided), (4, Fault(0x2000).Event) })
        {
            await ScalarAsync(
                "update events set payload = $2::jsonb, version = 1 where run_id = $1 and seq = $3 returning 0",
                "f", System.Text.Encoding.UTF8.GetString(Audit.Projections.Serialization.EventSerializer.SerializePayload(e)), seq);
        }

        await ScalarAsync("update events set fold = case when seq = 2 then '\\x0901'::bytea end where run_id = $1 returning 0", "f");
        var fromPayload = store.ReadForFold("f", 0, 4).ToList();
        Assert.Equal(fromFold, fromPayload);
        Assert.Equal([1L, 2L, 3L, 4L], fromPayload.Select(r => r.Seq));
        Assert.Equal(7, fromPayload[1].TsNs);
    }

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}

internal static class AsyncEnumerableExtensions
{
    public static async Task<T> SingleAsync<T>(this IAsyncEnumerable<T> source)
    {
        var list = new List<T>();
        await foreach (var x in source)
        {
            list.Add(x);
        }

        return Assert.Single(list);
    }
}
