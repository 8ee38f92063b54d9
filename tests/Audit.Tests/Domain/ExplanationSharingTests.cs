using Audit.Domain.Events;
using Audit.Domain.Model;
using static Audit.Tests.Domain.Scenario;

namespace Audit.Tests.Domain;

/// <summary>
/// The engine reuses a run's fault context and shares explanation steps between decisions (StepMemo):
/// neither may let one decision's explanation show another's steps or facts.
/// </summary>
public sealed class ExplanationSharingTests
{
    private const ulong Hva = 0x7f0000000000, Gpa = 0x40000000, Size = 0x40000000;

    private static Scenario AnonSlot(long vmaSeqOffset = 0)
    {
        var s = Arm64();
        for (var i = 0; i < vmaSeqOffset; i++)
        {
            s.Do(new VmaAdvised(Audit.Domain.Addresses.HvaRange.FromSize(new Audit.Domain.Addresses.Hva(Hva), 0x1000), "MADV_NORMAL"));
        }

        s.Vma(Hva, Size, VmaFlags.None, null, Anon());
        s.Slot(1, Gpa, Size, Hva);
        return s;
    }

    [Fact]
    public void A_decision_keeps_its_explanation_when_the_run_decides_the_next_fault()
    {
        var s = AnonSlot();
        var mapped = s.Fault(Gpa + 0x5000, Access.Write);
        var before = Render(mapped.Explanation);

        // An access outside every memslot takes another path through the rules, in the same reused context.
        var mmio = s.Fault(0x10000, Access.Read);

        Assert.Equal(FaultOutcome.Mapped, mapped.Outcome);
        Assert.Equal(before, Render(mapped.Explanation));
        Assert.DoesNotContain(mmio.Explanation, step => step.Rule == Rules.Arm64Map.Id);
        Assert.Contains(mmio.Explanation, step => step.Rule == Rules.Arm64NoMemslot.Id);
        Assert.Contains(mmio.Explanation.SelectMany(x => x.Facts), f => f.Name == "fault" && f.Value.Contains("0x10000", StringComparison.Ordinal));
        Assert.DoesNotContain(mmio.Explanation.SelectMany(x => x.Facts), f => f.Name == "fault" && f.Value.Contains("0x40005000", StringComparison.Ordinal));
    }

    [Fact]
    public void Faults_on_the_same_vma_share_a_step_and_each_cites_its_own_fault()
    {
        var s = AnonSlot();
        var first = s.Fault(Gpa + 0x1000, Access.Write);
        var second = s.Fault(Gpa + 0x200000, Access.Write);

        var map1 = first.Explanation.Single(x => x.Rule == Rules.Arm64Map.Id);
        var map2 = second.Explanation.Single(x => x.Rule == Rules.Arm64Map.Id);
        Assert.Same(map1, map2);
        Assert.Contains(first.Explanation.SelectMany(x => x.Facts), f => f.Name == "fault" && f.Value.EndsWith("0x40001000", StringComparison.Ordinal));
        Assert.Contains(second.Explanation.SelectMany(x => x.Facts), f => f.Name == "fault" && f.Value.EndsWith("0x40200000", StringComparison.Ordinal));
    }

    [Fact]
    public void Runs_with_the_same_texts_cite_their_own_events()
    {
        // Two runs whose VMA was mapped at different seqs: the memo is shared by every run, the facts are not.
        var a = AnonSlot();
        var b = AnonSlot(vmaSeqOffset: 3);
        var mapA = a.Fault(Gpa + 0x3000, Access.Write).Explanation.Single(x => x.Rule == Rules.Arm64Map.Id);
        var mapB = b.Fault(Gpa + 0x3000, Access.Write).Explanation.Single(x => x.Rule == Rules.Arm64Map.Id);

        Assert.Equal(mapA.Text, mapB.Text);
        Assert.NotEqual(mapA.Facts.Single(f => f.Name == "vma").Seq, mapB.Facts.Single(f => f.Name == "vma").Seq);
        Assert.Equal(a.Log.Single(x => x.Input is VmaMapped).Seq, mapA.Facts.Single(f => f.Name == "vma").Seq);
        Assert.Equal(b.Log.Single(x => x.Input is VmaMapped).Seq, mapB.Facts.Single(f => f.Name == "vma").Seq);
    }

    [Fact]
    public void A_memo_reuses_a_step_only_for_the_same_objects()
    {
        var memo = new StepMemo();
        var fact = new Fact("vma", "a", 3);
        var text = "maps Normal 4K rw-";
        var why = new Why();
        why.Add(memo, Rules.Arm64Map, text, fact).Add(memo, Rules.Arm64Map, text, fact);

        // Equal by value but another object: another run's fact, or the same run's after the VMA changed.
        var twin = new Fact("vma", "a", 3);
        why.Add(memo, Rules.Arm64Map, text, twin);

        // More distinct steps than the memo keeps, then the first again: still the right step.
        for (var i = 0; i < 20; i++)
        {
            why.Add(memo, Rules.Arm64Map, text, new Fact("vma", i.ToString(System.Globalization.CultureInfo.InvariantCulture), i));
        }

        why.Add(memo, Rules.Arm64Map, text, fact);
        var steps = why.Build();

        Assert.Same(steps[0], steps[1]);
        Assert.NotSame(steps[1], steps[2]);
        Assert.Same(twin, steps[2].Facts[0]);
        Assert.Equal(Enumerable.Range(0, 20).Select(i => (long?)i), steps.Skip(3).Take(20).Select(x => x.Facts[0].Seq));
        Assert.Same(fact, steps[^1].Facts[0]);
        Assert.Equal(text, steps[^1].Text);
    }

    private static string Render(Audit.Domain.ValueList<ExplanationStep> steps) =>
        string.Join("\n", steps.Select(x => $"{x.Rule}: {x.Text} [{string.Join(", ", x.Facts.Select(f => $"{f.Name}={f.Value}@{f.Seq}"))}]"));
}
