using System.Text;
using Audit.Domain;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Projections.Serialization;
using Audit.Tests.Projections;

namespace Audit.Tests.Serialization;

/// <summary>Version 2 of guest_faulted and fault_resolved (ADR 0013): compact records that read back as the events written.</summary>
public sealed class CompactRecordTests
{
    /// <summary>What a reader in another process holds: every entry the writer stored, loaded from its JSON.</summary>
    private static StepTable ReaderOf(StepTable writer)
    {
        var reader = new StepTable(writer: false);
        foreach (var (id, json) in writer.TakeAdded())
        {
            reader.LoadJson(id, json);
        }

        return reader;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Every_fault_and_decision_of_a_random_run_reads_back_equal_and_a_decision_takes_a_tenth_of_its_jsonb(int seed)
    {
        var writer = new StepTable(writer: true);
        var run = RandomRun.Decided(seed, 600).Where(r => CompactRecord.Applies(r.Event)).ToList();
        var records = run.Select(r => CompactRecord.Encode(r.Event, r.Seq, writer)).ToList();
        var reader = ReaderOf(writer);

        var (recordBytes, jsonBytes) = (0L, 0L);
        for (var i = 0; i < run.Count; i++)
        {
            Assert.Equal(run[i].Event, CompactRecord.Decode(records[i], run[i].Seq, reader, new PolicyCache()));
            if (run[i].Event is FaultResolved)
            {
                recordBytes += records[i].Length;
                jsonBytes += EventSerializer.SerializePayload(run[i].Event).Length;
            }
        }

        Assert.True(run.Count(r => r.Event is FaultResolved) > 100, "too few decisions to measure");
        Assert.True(recordBytes * 10 < jsonBytes, $"decisions took {recordBytes:N0} bytes as records against {jsonBytes:N0} as jsonb text");
    }

    [Fact]
    public void A_fold_reads_a_decision_record_as_the_decision_without_its_explanation()
    {
        var writer = new StepTable(writer: true);
        var decision = RandomRun.Decided(4, 300).First(r => r.Event is FaultResolved { Explanation.Count: > 1 });
        var record = CompactRecord.Encode(decision.Event, decision.Seq, writer);

        var folded = new FoldCodec.Reader().Decode(record, decision.Seq);

        Assert.True(FoldCodec.Readable(record));
        Assert.Equal(((FaultResolved)decision.Event) with { Explanation = ValueList<ExplanationStep>.Empty }, folded);
    }

    public static TheoryData<string> Texts() =>
    [
        "write translation fault at 0x40140000",
        "slot 1 as 0 gpa [0x40000000, 0x140000000) hva 0xffff40000000",
        "0x0 and 0xffffffffffffffff at both ends",
        "leading zeros 0x0010, capitals 0xABC and 0xab_c, glued x0x10 and 0x10g, too long 0x10000000000000000, bare 0x",
        "",
    ];

    [Theory]
    [MemberData(nameof(Texts))]
    public void A_step_text_reads_back_character_for_character_whatever_hex_it_holds(string text)
    {
        var step = new ExplanationStep("x86.make_spte.perms", text, ValueList.Of(new Fact("value", text, 9)));
        var decision = new FaultResolved(9, FaultOutcome.Mapped, 0, null, "x86-vmx/6.12", ValueList.Of(step));
        var writer = new StepTable(writer: true);
        var record = CompactRecord.Encode(decision, 10, writer);

        Assert.Equal(decision, CompactRecord.Decode(record, 10, ReaderOf(writer), new PolicyCache()));
    }

    [Fact]
    public void Fact_seqs_near_far_after_or_absent_read_back_as_written()
    {
        long?[] seqs = [null, 1000, 0, 1, 999, 3, 1005, -3, long.MaxValue, long.MinValue];
        var facts = seqs.Select((s, i) => new Fact("f" + i, "v", s)).ToArray();
        var decision = new FaultResolved(1000, FaultOutcome.Error, -14, null, "arm64/6.18", ValueList.Of(new ExplanationStep("r", "t", ValueList.Of(facts))));
        var writer = new StepTable(writer: true);

        var record = CompactRecord.Encode(decision, 1001, writer);

        Assert.Equal(decision, CompactRecord.Decode(record, 1001, ReaderOf(writer), new PolicyCache()));
    }

    [Fact]
    public void Shapes_are_shared_by_decisions_that_differ_only_in_addresses_and_seqs()
    {
        var writer = new StepTable(writer: true);
        for (var i = 1; i <= 50; i++)
        {
            var gpa = Hex.Format(0x40000000UL + ((ulong)i << 12));
            var step = new ExplanationStep("arm64.user_mem_abort.host_writable", "write fault: the host page is pinned writable",
                ValueList.Of(new Fact("fault", $"write translation fault at {gpa}", 2 * i), new Fact("vma.prot", "rw-", 1)));
            CompactRecord.Encode(new FaultResolved(2 * i, FaultOutcome.Mapped, 0, null, "arm64/6.17", ValueList.Of(step)), (2 * i) + 1, writer);
        }

        // One shape for all fifty; no step repeated whole.
        var added = writer.TakeAdded();
        Assert.Single(added);
        Assert.Contains("\"shape\"", added[0].Json, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(4)]
    [InlineData(5)]
    public void A_step_finds_its_shape_without_making_it_and_takes_out_the_same_values(int seed)
    {
        var steps = RandomRun.Decided(seed, 600).Select(r => r.Event).OfType<FaultResolved>()
            .SelectMany(d => d.Explanation.Select(step => (Step: step, d.InputSeq))).ToList();
        var shapes = new Dictionary<StepShape, int>(ShapeComparer.Instance);
        StepShape? previous = null;
        foreach (var (step, inputSeq) in steps)
        {
            var made = new List<ulong>();
            var shape = StepShape.Of(step, inputSeq, made);
            var taken = new List<ulong>();
            StepShape.ArgsOf(step, inputSeq, taken);

            Assert.Equal(made, taken);
            Assert.Equal(StepShape.Hash(shape), StepShape.Hash(step, inputSeq));
            Assert.True(shape.Matches(step, inputSeq));
            Assert.Equal(previous == shape, previous?.Matches(step, inputSeq) ?? false);

            // Found by the step, the table answers what it answers for the shape made from it.
            shapes.TryAdd(shape, shapes.Count + 1);
            Assert.True(shapes.GetAlternateLookup<ShapeProbe>().TryGetValue(new ShapeProbe(step, inputSeq), out var id));
            Assert.Equal(shapes[shape], id);
            previous = shape;
        }

        Assert.True(shapes.Count > 1, "the run's steps had a single shape: the test compares nothing");
    }

    [Fact]
    public void A_shape_is_not_found_from_a_step_that_differs_outside_its_values()
    {
        static ExplanationStep Step(string text, long seq) =>
            new("arm64.user_mem_abort.host_writable", text, ValueList.Of(new Fact("fault", "write fault at 0x40001000", seq)));

        var table = new StepTable(writer: true);
        var args = new List<ulong>();
        var id = table.InternShape(Step("the host page at 0x1000 is writable", 5), 5, args);

        Assert.Equal(id, table.InternShape(Step("the host page at 0x2000 is writable", 9), 9, args));
        Assert.NotEqual(id, table.InternShape(Step("the host page at 0x1000 is pinned", 5), 5, args));
        Assert.NotEqual(id, table.InternShape(Step("the host page at 0x1000 is writable", 3), 5, args));
        Assert.NotEqual(id, table.InternShape(Step("the host page at 0x1000 is writable at 0x2", 5), 5, args));
    }

    [Fact]
    public void A_record_naming_an_entry_the_table_lacks_asks_for_a_reload_and_malformed_records_are_refused()
    {
        var writer = new StepTable(writer: true);
        var decision = new FaultResolved(1, FaultOutcome.Mapped, 0, new Mapping(new Gpa(0x1000), 4096, Stage2MemType.WB, true, Perms.R), "x86-shadow",
            ValueList.Of(new ExplanationStep("x86.shadow.memtype", "write-back", ValueList<Fact>.Empty)));
        var record = CompactRecord.Encode(decision, 2, writer);

        Assert.Throws<StepMissingException>(() => CompactRecord.Decode(record, 2, new StepTable(writer: false), new PolicyCache()));
        var reader = ReaderOf(writer);
        Assert.Throws<InvalidDataException>(() => CompactRecord.Decode([.. record, 0], 2, reader, new PolicyCache()));
        var badTag = record.ToArray();
        badTag[1] = 77;
        Assert.Throws<InvalidDataException>(() => CompactRecord.Decode(badTag, 2, reader, new PolicyCache()));
        var badOutcome = record.ToArray();
        badOutcome[2] = 200;
        Assert.Throws<InvalidDataException>(() => CompactRecord.Decode(badOutcome, 2, reader, new PolicyCache()));
        Assert.Equal(decision, CompactRecord.Decode(record, 2, reader, new PolicyCache()));
    }

    [Fact]
    public void Every_value_of_the_enums_a_record_stores_has_a_stable_code_and_the_codes_never_moved()
    {
        Assert.Equal(Enum.GetValues<Access>().Order(), RecordCodes.Access.Values.Order());
        Assert.Equal(Enum.GetValues<FaultKind>().Order(), RecordCodes.FaultKind.Values.Order());
        Assert.Equal(Enum.GetValues<Stage2MemType>().Order(), RecordCodes.MemType.Values.Order());
        Assert.Equal(Enum.GetValues<FaultOutcome>().Order(), RecordCodes.Outcome.Values.Order());

        // Codes are stored: these must keep their numbers whatever Domain does to its enums.
        Assert.Equal((4, 8, 7, 10), (RecordCodes.Outcome.Code(FaultOutcome.MemoryFaultExit), RecordCodes.Outcome.Code(FaultOutcome.Error), RecordCodes.Outcome.Code(FaultOutcome.Sigbus), RecordCodes.Outcome.Code(FaultOutcome.Kept)));
        Assert.Equal(7, RecordCodes.MemType.Code(Stage2MemType.UC));
    }

    [Fact]
    public void A_compact_event_prints_its_payload_as_postgresql_prints_jsonb()
    {
        var fault = new GuestFaulted(1, new Gpa(0x40000200000), Access.Write, FaultKind.Translation);

        var text = EventSerializer.AsJsonbText(fault);

        // As PostgreSQL printed this fault's payload in the demo run (Storage/V1/demo-events.tsv, gh seq 14).
        Assert.Equal("{\"gpa\": \"0x40000200000\", \"kind\": \"translation\", \"vcpu\": 1, \"access\": \"write\"}", text);
        Assert.Equal(fault, EventSerializer.Deserialize("guest_faulted", 1, Encoding.UTF8.GetBytes(text)));
    }
}
