using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Projections.Temporal;
using Audit.Tests.Domain;
using static Audit.Tests.Domain.Scenario;

namespace Audit.Tests.Projections;

/// <summary>ADR 0015: a cell's row changes when the set of kinds in it does, and only then. Pure fold, no database.</summary>
public sealed class Stage2CellsFoldTests
{
    private const ulong RamHva = 0x7f0000000000, Ram = 0x40000000, BarHva = 0x7c0000000000, Bar = 0x41000000;

    // 16 MiB of RAM and a 2 MiB BAR right after it: apart in 2 MiB cells, in one 32 MiB and one 512 MiB cell.
    private static Scenario Guest()
    {
        var s = Arm64();
        s.Vma(RamHva, 0x1000000, VmaFlags.None, HostMemType.MT_NORMAL, Anon());
        s.Slot(0, Ram, 0x1000000, RamHva);
        s.Vma(BarHva, 0x200000, VmaFlags.VM_SHARED | VmaFlags.VM_IO | VmaFlags.VM_PFNMAP, HostMemType.MT_DEVICE_nGnRnE, Vfio(0x66000));
        s.Slot(1, Bar, 0x200000, BarHva);
        return s;
    }

    private static void Fold(Scenario s, RunProjections view, int from)
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

    private static long? Kinds(RunProjections view, int level, ulong gpa) =>
        view.CellViews[level].TryFind(gpa, out var row) ? row.Value.Data.Kinds : null;

    private static long BitOf(RunProjections view, ulong gpa) =>
        view.Stage2.TryFind(gpa, out var row) && row.Value.Data is { MemType: { } t } d ? 1L << Stage2Cells.Bit(t, d.Ipat) : throw new InvalidOperationException($"nothing mapped at {gpa:x}");

    private static IEnumerable<TemporalRow> CellRows(RunProjections view) => view.Log.Rows.Where(r => Stage2Cells.IsCells(r.Projection));

    [Fact]
    public void A_cell_gets_a_row_when_a_kind_comes_or_goes_and_none_while_its_kinds_stay()
    {
        var s = Guest();
        var view = new RunProjections();

        // Given a first RAM page mapped: a row in its cell at each level.
        var mark = s.Log.Count;
        s.Fault(Ram + 0x5000, Access.Write);
        Fold(s, view, mark);
        var ram = BitOf(view, Ram + 0x5000);
        Assert.Equal(Stage2Cells.LevelBits.Count, CellRows(view).Count());
        Assert.All(Enumerable.Range(0, Stage2Cells.LevelBits.Count), level => Assert.Equal(ram, Kinds(view, level, Ram)));

        // When a second page of the same kind is mapped in the same cells: no cell row changes.
        view.Log.Clear();
        mark = s.Log.Count;
        s.Fault(Ram + 0x9000, Access.Write);
        Fold(s, view, mark);
        Assert.NotEmpty(view.Log.Rows);
        Assert.Empty(CellRows(view));
        Assert.DoesNotContain(view.Log.Closed, c => Stage2Cells.IsCells(c.Projection));

        // When the BAR is mapped: a 2 MiB cell of its own, and the larger cells hold both kinds, drawn as the BAR's.
        view.Log.Clear();
        mark = s.Log.Count;
        s.Fault(Bar + 0x1000, Access.Write);
        Fold(s, view, mark);
        var bar = BitOf(view, Bar + 0x1000);
        Assert.NotEqual(ram, bar);
        Assert.Equal(ram, Kinds(view, 0, Ram));
        Assert.Equal(bar, Kinds(view, 0, Bar));
        Assert.Equal(ram | bar, Kinds(view, 1, Ram));
        Assert.Equal(ram | bar, Kinds(view, 2, Bar));
        Assert.Equal(System.Numerics.BitOperations.Log2((ulong)bar), Stage2Cells.Drawn(ram | bar));

        // When the BAR's mapping is invalidated: its cell goes, and the larger ones hold RAM's kind again.
        mark = s.Log.Count;
        s.Do(new MmuNotifierInvalidated(new(BarHva), new(BarHva + 0x200000)));
        Fold(s, view, mark);
        Assert.Null(Kinds(view, 0, Bar));
        Assert.Equal(ram, Kinds(view, 1, Bar));
        Assert.Equal(ram, Kinds(view, 2, Ram));
    }

    [Fact]
    public void Snapped_windows_have_pixels_of_whole_cells_and_finer_views_keep_the_rows()
    {
        Assert.Null(Stage2Cells.Snap(Ram, Ram + 0x4000000, (2UL << 20) - 1));
        var w = Stage2Cells.Snap(Ram + 0x123000, Ram + 0x400000000, 40UL << 20)!.Value;
        Assert.Equal(25, w.CellBits);
        Assert.Equal(32UL << 20, w.Cell);
        Assert.Equal(0UL, w.Lo % (1UL << w.CellBits));
        Assert.True(w.Lo <= Ram + 0x123000);
        Assert.Equal(29, Stage2Cells.Snap(0, 1UL << 40, 3UL << 30)!.Value.CellBits);
        Assert.Equal(3UL << 30, Stage2Cells.Snap(0, 1UL << 40, 3UL << 30)!.Value.Cell);
    }
}
