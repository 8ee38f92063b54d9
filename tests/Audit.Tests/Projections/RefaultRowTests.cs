using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Projections.Temporal;
using Audit.Tests.Domain;
using static Audit.Tests.Domain.Scenario;

namespace Audit.Tests.Projections;

/// <summary>
/// ADR 0006: a translation fault whose decision would write the leaf already held leaves the row (and
/// the decision that made it) in place; a permission fault always changes it. Pure fold, no database.
/// </summary>
public sealed class RefaultRowTests
{
    private const ulong Hva = 0x7f0000000000, Gpa = 0x40000000;

    private static Scenario Ram(Scenario s)
    {
        s.Vma(Hva, 0x40000000, VmaFlags.None, HostMemType.MT_NORMAL, Anon());
        s.Slot(0, Gpa, 0x40000000, Hva);
        return s;
    }

    /// <summary>Folds the scenario's events from <paramref name="from"/> on, in seq order, as the store holds them.</summary>
    private static void Fold(Scenario s, RunProjections view, int from = 0)
    {
        foreach (var (seq, input, derived) in s.Log.Skip(from))
        {
            view.Apply(new Recorded(seq, seq * 10, input));
            for (var i = 0; i < derived.Count; i++)
            {
                view.Apply(new Recorded(seq + 1 + i, seq * 10, derived[i]));
            }
        }
    }

    private static (RunProjections View, int Mark) Mapped(Scenario s, Access first)
    {
        s.Fault(Gpa + 0x5000, first);
        var view = new RunProjections();
        Fold(s, view);
        view.Log.Clear();
        return (view, s.Log.Count);
    }

    private static Stage2Data Held(RunProjections view) =>
        view.Stage2.TryFind(Gpa + 0x5000, out var row) ? row.Value.Data : throw new InvalidOperationException("no stage-2 row");

    [Fact]
    public void Arm64_a_second_translation_fault_with_the_same_result_changes_no_row()
    {
        var s = Ram(Arm64());
        var (view, mark) = Mapped(s, Access.Write);
        var before = Held(view);

        s.Fault(Gpa + 0x5000, Access.Write);
        Fold(s, view, mark);

        Assert.Empty(view.Log.Rows);
        Assert.Empty(view.Log.Closed);
        Assert.Equal(before, Held(view));
    }

    [Fact]
    public void Arm64_a_read_translation_fault_on_a_writable_leaf_keeps_its_permissions()
    {
        // stage2_pte_needs_update ignores the permission bits: -EAGAIN, the rw leaf stays.
        var s = Ram(Arm64());
        var (view, mark) = Mapped(s, Access.Write);
        var before = Held(view);
        Assert.Equal(Perms.W, before.Perms!.Value & Perms.W);

        var again = s.Fault(Gpa + 0x5000, Access.Read);
        Assert.Equal(FaultOutcome.Kept, again.Outcome);
        Assert.Equal(before.Perms, again.Mapping!.Perms);
        Fold(s, view, mark);

        Assert.Empty(view.Log.Rows);
        Assert.Equal(before, Held(view));
    }

    [Fact]
    public void A_permission_fault_changes_the_row_even_when_the_result_equals_the_held_leaf()
    {
        var s = Ram(Arm64());
        var (view, mark) = Mapped(s, Access.Write);
        var before = Held(view);

        var relax = s.Fault(Gpa + 0x5000, Access.Write, FaultKind.Permission);
        Assert.Equal(before.Perms, relax.Mapping!.Perms);
        Fold(s, view, mark);

        var row = Assert.Single(view.Log.Rows);
        Assert.Equal(relax.InputSeq + 1, row.FromSeq);
        Assert.Single(view.Log.Closed);
        Assert.Equal(relax.InputSeq, Held(view).InputSeq);
    }

    [Fact]
    public void X86_a_translation_fault_keeps_the_row_only_when_the_permissions_match()
    {
        var s = Ram(X86());
        var (view, mark) = Mapped(s, Access.Read);
        var before = Held(view);

        s.Fault(Gpa + 0x5000, Access.Read);
        Fold(s, view, mark);
        Assert.Empty(view.Log.Rows);
        Assert.Equal(before, Held(view));

        // Untouched anonymous memory is mapped without W; the write maps it writable: a new row.
        mark = s.Log.Count;
        var write = s.Fault(Gpa + 0x5000, Access.Write);
        Assert.NotEqual(before.Perms, write.Mapping!.Perms);
        Fold(s, view, mark);
        Assert.NotEmpty(view.Log.Rows);
        Assert.Equal(write.InputSeq, Held(view).InputSeq);
    }
}
