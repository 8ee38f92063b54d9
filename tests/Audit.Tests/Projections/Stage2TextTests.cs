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

        Assert.Equal("""{"kind":"mapped","granule":4096,"memType":"NormalNC","perms":"rw-","policy":"arm64/6.17","decidedAt":41}""", text);
        Assert.Equal(d, Stage2Text.Read(text, 41));
    }

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
        Assert.Equal("""{"kind":"gap","outcome":"unmapped","causeSeq":25,"causeType":"VmaUnmapped","causeRule":"kvm_mmu_notifier_invalidate_range_start"}""", Stage2Text.Write(d, 26));
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
