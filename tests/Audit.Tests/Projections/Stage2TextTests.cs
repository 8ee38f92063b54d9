using Audit.Api.Features.Bench;
using Audit.Domain;
using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Projections.Temporal;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Projections;

/// <summary>
/// ADR 0015: a stage-2 row's data leaves out what its row implies and reads back whole. Every row a real
/// fold writes is checked, as it closes and while it holds, so a field the fold starts to set differently
/// from what the reader implies fails here rather than in a why panel.
/// </summary>
public sealed class Stage2TextTests
{
    public static TheoryData<string> Samples() => SampleRuns.Files();

    [Theory]
    [MemberData(nameof(Samples))]
    public void Every_stage2_row_of_a_bundled_run_reads_back_as_the_fold_held_it(string file)
    {
        var inputs = SampleRuns.Inputs(file);
        AssertEveryRowReadsBack(inputs, Policies.DefaultFor(inputs.OfType<HostDescribed>().First()));
    }

    [Theory]
    [InlineData(3)]
    [InlineData(11)]
    public void Every_stage2_row_of_a_synthetic_run_with_logging_and_unmaps_reads_back_as_the_fold_held_it(int seed) =>
        AssertEveryRowReadsBack(SyntheticRun.Generate(20_000, seed).Select(x => x.Event).ToList(), Policies.Arm64_6_17);

    [Fact]
    public void A_mapping_opened_by_its_fault_is_stored_without_what_its_row_implies()
    {
        var d = new Stage2Data(Stage2RowKind.Mapped, 4096, Stage2MemType.NormalNC, null, Perms.R | Perms.W, "arm64/6.17", 41, 40, 41, "FaultResolved");

        var text = Stage2Text.Write(d, fromSeq: 41);

        Assert.Equal("""[4096,"NormalNC",null,"rw-","arm64/6.17"]""", text);
        Assert.Equal(d, Stage2Text.Read(text, 41));
        Assert.Equal(d with { DecidedAt = 0, InputSeq = null, LastChange = 0, LastChangeType = null }, Stage2Text.ReadKind(text));
    }

    [Theory]
    [InlineData(null, null, true, null, null, "[null,null,true,null,null]")]
    [InlineData(2097152UL, Stage2MemType.WB, false, Perms.R | Perms.X, "x86-ept/6.18", """[2097152,"WB",false,"r-x","x86-ept/6.18"]""")]
    [InlineData(4096UL, Stage2MemType.Device, null, Perms.R | Perms.W, "arm64/6.17", """[4096,"Device",null,"rw-","arm64/6.17"]""")]
    public void A_plain_mapping_is_written_as_the_json_writer_writes_it(ulong? granule, Stage2MemType? memType, bool? ipat, Perms? perms, string? policy, string expected)
    {
        var whole = new Stage2Data(Stage2RowKind.Mapped, granule, memType, ipat, perms, policy, 41, 40, 41, "FaultResolved");

        // Whole, or without what the row implies: the same text, and it reads back whole.
        foreach (var d in new[] { whole, whole with { InputSeq = null, LastChange = 0, LastChangeType = null } })
        {
            var text = Stage2Text.Write(d, fromSeq: 41);
            Assert.Equal(expected, text);
            Assert.Equal(whole, Stage2Text.Read(text, 41));
        }
    }

    [Fact]
    public void A_mapping_whose_policy_the_json_writer_escapes_still_reads_back()
    {
        var d = new Stage2Data(Stage2RowKind.Mapped, 4096, Stage2MemType.NormalNC, null, Perms.R, "x86+seed \"b\"", 41, 40, 41, "FaultResolved");

        var text = Stage2Text.Write(d, fromSeq: 41);

        Assert.StartsWith("[4096,", text, StringComparison.Ordinal);
        Assert.Equal(d, Stage2Text.Read(text, 41));
    }

    [Fact]
    public void A_compact_row_with_more_than_its_kind_keeps_the_rest_in_an_object_and_its_kind_text_reads_alone()
    {
        var d = new Stage2Data(Stage2RowKind.Mapped, 2097152, Stage2MemType.WB, true, Perms.R | Perms.W | Perms.X, "x86/6.12-tdp", 30, 9, 30, "Stage2WriteProtected", ValueList.Of(30L), WriteProtectRule: "x86.kvm_mmu_slot_remove_write_access");

        var text = Stage2Text.Write(d, fromSeq: 30);

        Assert.StartsWith("""[2097152,"WB",true,"rwx","x86/6.12-tdp",{""", text, StringComparison.Ordinal);
        Assert.Equal(d, Stage2Text.Read(text, 30));
        // What the map groups by: the text before the object.
        var kind = text[..text.IndexOf(",{", StringComparison.Ordinal)];
        Assert.Equal((Stage2MemType.WB, (bool?)true, Perms.R | Perms.W | Perms.X, (ulong?)2097152, "x86/6.12-tdp"), Kind(Stage2Text.ReadKind(kind)));
        Assert.Equal(Kind(d), Kind(Stage2Text.ReadKind("{\"kind\":\"mapped\",\"granule\":2097152,\"memType\":\"WB\",\"ipat\":true,\"perms\":\"rwx\",\"policy\":\"x86/6.12-tdp\"")));
    }

    [Fact]
    public void A_row_decided_before_it_opened_names_its_decision_after_its_kind()
    {
        var d = new Stage2Data(Stage2RowKind.Mapped, 4096, Stage2MemType.Normal, null, Perms.R, "arm64/6.17", 13, 12, 13, "FaultResolved");

        var text = Stage2Text.Write(d, fromSeq: 30);

        Assert.Equal("""[4096,"Normal",null,"r--","arm64/6.17",{"decidedAt":13,"lastChange":13}]""", text);
        Assert.Equal(d, Stage2Text.Read(text, 30));
    }

    [Fact]
    public void A_mapping_without_its_deciding_seq_keeps_the_object_form()
    {
        var d = new Stage2Data(Stage2RowKind.Mapped, 4096, Stage2MemType.Normal, null, Perms.R, "arm64/6.17", LastChange: 30);

        var text = Stage2Text.Write(d, fromSeq: 30);

        Assert.StartsWith("""{"kind":"mapped",""", text, StringComparison.Ordinal);
        Assert.Equal(d with { LastChangeType = "FaultResolved" }, Stage2Text.Read(text, 30));
    }

    [Fact]
    public void A_gap_is_stored_as_its_outcome_and_cause_and_reads_back_whole()
    {
        var unmapped = new Stage2Data(Stage2RowKind.Gap, Outcome: "unmapped", LastChange: 83910, LastChangeType: "Stage2Unmapped", CauseSeq: 83908, CauseType: "GuestFaulted", CauseRule: "arm64.stage2_map_walk_leaf.break_block");
        var refused = new Stage2Data(Stage2RowKind.Gap, Outcome: "memory_fault_exit", LastChange: 12, LastChangeType: "FaultResolved", CauseSeq: 11, CauseType: "GuestFaulted");

        var unmappedText = Stage2Text.Write(unmapped, fromSeq: 83910);
        var piece = Stage2Text.Write(unmapped, fromSeq: 90000);
        var refusedText = Stage2Text.Write(refused, fromSeq: 12);

        Assert.Equal("""["gap","unmapped",83908,"GuestFaulted","arm64.stage2_map_walk_leaf.break_block"]""", unmappedText);
        Assert.Equal("""["gap","unmapped",83908,"GuestFaulted","arm64.stage2_map_walk_leaf.break_block",{"lastChange":83910}]""", piece);
        Assert.Equal("""["gap","memory_fault_exit",11,"GuestFaulted",null]""", refusedText);
        Assert.Equal(unmapped, Stage2Text.Read(unmappedText, 83910));
        Assert.Equal(unmapped, Stage2Text.Read(piece, 90000));
        Assert.Equal(refused, Stage2Text.Read(refusedText, 12));
        Assert.False(Stage2Text.ReadKind(unmappedText).IsMapped);
    }

    private static (Stage2MemType?, bool?, Perms?, ulong?, string?) Kind(Stage2Data d) => (d.MemType, d.Ipat, d.Perms, d.Granule, d.Policy);

    [Fact]
    public void A_piece_left_by_a_later_change_keeps_the_seqs_that_differ_from_its_row()
    {
        var d = new Stage2Data(Stage2RowKind.Mapped, 2097152, Stage2MemType.Normal, null, Perms.R | Perms.X, "arm64/6.17", 13, 9, 22, "Stage2WriteProtected", ValueList.Of(20L));

        var text = Stage2Text.Write(d, fromSeq: 30);

        Assert.Contains("\"inputSeq\":9", text, StringComparison.Ordinal);
        Assert.Contains("\"lastChange\":22", text, StringComparison.Ordinal);
        Assert.DoesNotContain("lastChangeType", text, StringComparison.Ordinal);
        Assert.Equal(d, Stage2Text.Read(text, 30));
    }

    [Fact]
    public void A_row_stored_whole_by_an_earlier_build_reads_as_it_was_written()
    {
        const string stored = """{"kind":"gap","lastChange":26,"lastChangeType":"Stage2Unmapped","outcome":"unmapped","causeSeq":25,"causeType":"VmaUnmapped","causeRule":"kvm_mmu_notifier_invalidate_range_start"}""";

        var d = Stage2Text.Read(stored, fromSeq: 26);

        Assert.Equal((26L, "Stage2Unmapped", 25L), (d.LastChange, d.LastChangeType, d.CauseSeq));
        Assert.Equal("""["gap","unmapped",25,"VmaUnmapped","kvm_mmu_notifier_invalidate_range_start"]""", Stage2Text.Write(d, 26));
    }

    [Fact]
    public void A_compact_row_of_the_build_that_also_wrote_isEmpty_reads_as_it_was_meant()
    {
        const string stored = """["mapped",2097152,"Normal",null,"r-x","arm64/6.17",{"lastChange":22,"writeProtectedAt":[20],"isEmpty":false}]""";

        var d = Stage2Text.Read(stored, fromSeq: 13);

        Assert.Equal((13L, 22L, "Stage2WriteProtected"), (d.DecidedAt, d.LastChange, d.LastChangeType));
        Assert.Equal(ValueList.Of(20L), d.WriteProtectedAt);
        Assert.DoesNotContain("isEmpty", Stage2Text.Write(d, 13), StringComparison.Ordinal);
    }

    [Fact]
    public void A_mapping_in_the_form_of_ADR_0016_with_its_kind_named_first_reads_as_the_form_without_it()
    {
        const string tagged = """["mapped",4096,"NormalNC",null,"rw-","arm64/6.17",{"lastChange":50}]""";
        const string untagged = """[4096,"NormalNC",null,"rw-","arm64/6.17",{"lastChange":50}]""";

        Assert.Equal(Stage2Text.Read(untagged, 41), Stage2Text.Read(tagged, 41));
        Assert.Equal(Stage2Text.ReadKind(untagged[..untagged.IndexOf(",{", StringComparison.Ordinal)]), Stage2Text.ReadKind(tagged[..tagged.IndexOf(",{", StringComparison.Ordinal)]));
        Assert.Equal(untagged, Stage2Text.Write(Stage2Text.Read(tagged, 41), 41));
    }

    private static void AssertEveryRowReadsBack(IReadOnlyList<InputEvent> inputs, Policy policy)
    {
        var state = Engine.Start(policy);
        var view = new RunProjections();
        long seq = 0;
        var checkedRows = 0;
        foreach (var input in inputs)
        {
            view.Apply(new Recorded(++seq, seq, input));
            foreach (var d in Engine.Step(state, seq, input))
            {
                view.Apply(new Recorded(++seq, seq, d));
            }

            foreach (var row in view.Log.Rows.Where(r => r.Projection == RunProjections.Stage2Name))
            {
                var held = view.Stage2.TryFind((ulong)row.Lo, out var open) && open.Value.FromSeq == row.FromSeq ? open.Value.Data : null;
                var read = Stage2Text.Read(row.Data, row.FromSeq);
                Assert.Equal(read, Stage2Text.Read(Stage2Text.Write(read, row.FromSeq), row.FromSeq));
                if (held is not null)
                {
                    Assert.Equal(held, read);
                }

                checkedRows++;
            }

            view.Log.Clear();
        }

        Assert.True(checkedRows > 0, "the run wrote no stage-2 row");
    }
}
