using Audit.Domain.Events;
using Audit.Domain.Intervals;

namespace Audit.Projections.Temporal;

/// <summary>A cell's row: the set of kinds of the mapped stage-2 blocks in it, one bit each (<see cref="Stage2Cells.Bit"/>).</summary>
public sealed record CellData(long Kinds);

/// <summary>
/// The coarse projection of stage-2 (ADR 0015): for each aligned cell of guest physical space, at a few
/// sizes (<see cref="LevelBits"/>), the set of kinds (memory type, with x86's IPAT) of the mapped blocks
/// inside it. A row is written only when a cell's set changes, so a cell of RAM that holds write-back
/// blocks from its first fault to the end of the run is one row, however many faults, unmaps and
/// write-protections it saw, and neighbouring cells of the same kinds share it. The bytes of each kind in each cell are counted in memory to know when a
/// kind comes or goes; they are never stored, and are counted again from the stage-2 rows that hold
/// when a fold is loaded back. The map draws a zoomed-out view from these rows instead of grouping
/// every stage-2 row in view (1.4M of them hold at the end of the 10M-event bench run).
/// </summary>
public sealed class Stage2Cells
{
    public const string Prefix = "stage2cells/";

    /// <summary>The first name after every name starting with <see cref="Prefix"/> ('0' follows '/'): the cells index's upper bound (migration 0017).</summary>
    public const string PrefixEnd = "stage2cells0";

    /// <summary>2 MiB, 32 MiB and 512 MiB: a view uses the largest cell not wider than one of its pixels.</summary>
    public static readonly IReadOnlyList<int> LevelBits = [21, 25, 29];

    /// <summary>Memory types from the least to the most cacheable, each with IPAT before without: a pixel holding several kinds is drawn as the first one here.</summary>
    private static readonly Stage2MemType[] Precedence =
        [Stage2MemType.Device, Stage2MemType.UC, Stage2MemType.NormalNC, Stage2MemType.WC, Stage2MemType.WP, Stage2MemType.WT, Stage2MemType.Normal, Stage2MemType.WB];

    private readonly TemporalView<CellData>[] _views;
    private readonly Dictionary<ulong, long[]>[] _bytes;
    private readonly HashSet<(int Level, ulong Cell)> _dirty = [];

    /// <summary>The dirty cells of a flush in (level, cell) order, kept between flushes: a flush follows every event.</summary>
    private readonly List<(int Level, ulong Cell)> _ordered = [];

    public Stage2Cells(Func<CellData, long, string> serialize)
    {
        _views = LevelBits.Select(b => new TemporalView<CellData>(Name(b), serialize)).ToArray();
        _bytes = LevelBits.Select(_ => new Dictionary<ulong, long[]>()).ToArray();
    }

    public IReadOnlyList<TemporalView<CellData>> Views => _views;

    private long _loadedMapped;
    private long _loadedCells;

    /// <summary>Whether the rows of this fold cover the run (false: mapped stage-2 rows were loaded back without any cell row, a run stored before this projection existed: `audit rebuild` gives it its cells).</summary>
    public bool Complete => _loadedMapped == 0 || _loadedCells > 0;

    public static string Name(int bits) => Prefix + bits.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public static bool IsCells(string projection) => projection.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>The bit of a kind in <see cref="CellData.Kinds"/>.</summary>
    public static int Bit(Stage2MemType memType, bool? ipat) => ((int)memType * 2) + (ipat == true ? 1 : 0);

    public static (Stage2MemType MemType, bool Ipat) KindOf(int bit) => ((Stage2MemType)(bit / 2), bit % 2 == 1);

    /// <summary>Where a kind stands when several share a pixel: lower first.</summary>
    public static int Rank(int bit) => (Array.IndexOf(Precedence, (Stage2MemType)(bit / 2)) * 2) + (bit % 2 == 1 ? 0 : 1);

    /// <summary>The kind of a set drawn for it: the first by <see cref="Rank"/>.</summary>
    public static int Drawn(long kinds)
    {
        var best = -1;
        for (var bit = 0; bit < 64; bit++)
        {
            if ((kinds & (1L << bit)) != 0 && (best < 0 || Rank(bit) < Rank(best)))
            {
                best = bit;
            }
        }

        return best;
    }

    /// <summary>
    /// The window a view of <paramref name="bytesPerPixel"/> is answered on: for a pixel of at least the
    /// smallest cell, pixels of whole cells of the largest size that fits, from a cell boundary, so each
    /// cell falls in exactly one pixel and the cells' answer is the rows' answer. Null: finer than a cell.
    /// </summary>
    public static MapWindow? Snap(ulong lo, ulong hi, ulong bytesPerPixel)
    {
        var bits = LevelBits.LastOrDefault(b => (1UL << b) <= bytesPerPixel);
        if (bits == 0)
        {
            return null;
        }

        var cell = 1UL << bits;
        return new MapWindow(lo & ~(cell - 1), hi, bytesPerPixel / cell * cell, bits);
    }

    /// <summary>Uncounts the mapped parts of the stage-2 rows inside [lo, hi) before a Set replaces them; the cells touched are looked at in <see cref="Flush"/>.</summary>
    public void Uncount(IntervalMap<TemporalView<Stage2Data>.Open> rows, ulong lo, ulong hi)
    {
        foreach (var x in rows.Overlapping(lo, hi))
        {
            if (x.Value.Data is { IsMapped: true, MemType: { } t } d)
            {
                Add(Math.Max(x.Start, lo), Math.Min(x.End, hi), Bit(t, d.Ipat), -1, dirty: true);
            }
        }
    }

    /// <summary>Counts what a Set of [lo, hi) to <paramref name="data"/> leaves there: the whole span holds that data, so no rows need reading.</summary>
    public void CountSet(ulong lo, ulong hi, Stage2Data data)
    {
        if (data is { IsMapped: true, MemType: { } t })
        {
            Add(lo, hi, Bit(t, data.Ipat), 1, dirty: true);
        }
    }

    /// <summary>A stage-2 row loaded back from the store: counted, not written again.</summary>
    public void LoadStage2(ulong lo, ulong hi, Stage2Data data)
    {
        if (data is { IsMapped: true, MemType: { } t })
        {
            Add(lo, hi, Bit(t, data.Ipat), 1, dirty: false);
            _loadedMapped++;
        }
    }

    /// <summary>A cell row loaded back from the store.</summary>
    public void Load(TemporalRow row)
    {
        var level = _views.Select((v, i) => (v, i)).First(p => p.v.Projection == row.Projection).i;
        _views[level].Load((ulong)row.Lo, (ulong)row.Hi, row.FromSeq, RunProjections.De<CellData>(row.Data));
        _loadedCells++;
    }

    /// <summary>
    /// Writes the cells whose set of kinds changed with the event at <paramref name="seq"/>. Neighbouring
    /// cells of the same kinds share a row: a guest mapped alike costs a row per level, not a row per cell
    /// (a 1 TiB guest is 524,288 cells of 2 MiB).
    /// </summary>
    public void Flush(long seq, ChangeLog log)
    {
        if (_dirty.Count == 0)
        {
            return;
        }

        _ordered.Clear();
        _ordered.AddRange(_dirty);
        _ordered.Sort();
        _dirty.Clear();
        (int Level, ulong Lo, ulong Hi, long Kinds)? run = null;
        foreach (var (level, cell) in _ordered)
        {
            var bits = LevelBits[level];
            var (lo, hi, kinds) = (cell << bits, (cell + 1) << bits, KindsOf(level, cell));
            if (run is { } r && r.Level == level && r.Hi == lo && r.Kinds == kinds)
            {
                run = r with { Hi = hi };
                continue;
            }

            if (run is { } done)
            {
                Write(_views[done.Level], done.Lo, done.Hi, done.Kinds, seq, log);
            }

            run = (level, lo, hi, kinds);
        }

        if (run is { } last)
        {
            Write(_views[last.Level], last.Lo, last.Hi, last.Kinds, seq, log);
        }
    }

    private long KindsOf(int level, ulong cell)
    {
        var counts = _bytes[level][cell];
        var kinds = 0L;
        for (var bit = 0; bit < counts.Length; bit++)
        {
            kinds |= counts[bit] > 0 ? 1L << bit : 0;
        }

        if (kinds == 0)
        {
            _bytes[level].Remove(cell);
        }

        return kinds;
    }

    private static void Write(TemporalView<CellData> view, ulong lo, ulong hi, long kinds, long seq, ChangeLog log)
    {
        if (kinds == 0)
        {
            view.Remove(lo, hi, seq, log);
            return;
        }

        if (lo > 0 && view.TryFind(lo - 1, out var left) && left.End == lo && left.Value.Data.Kinds == kinds)
        {
            lo = left.Start;
        }

        if (view.TryFind(hi, out var right) && right.Start == hi && right.Value.Data.Kinds == kinds)
        {
            hi = right.End;
        }

        view.Set(lo, hi, new CellData(kinds), seq, log);
    }

    private void Add(ulong lo, ulong hi, int bit, int sign, bool dirty)
    {
        for (var level = 0; level < LevelBits.Count; level++)
        {
            var bits = LevelBits[level];
            for (var cell = lo >> bits; cell <= (hi - 1) >> bits; cell++)
            {
                var bytes = Math.Min(hi, (cell + 1) << bits) - Math.Max(lo, cell << bits);
                if (!_bytes[level].TryGetValue(cell, out var counts))
                {
                    counts = _bytes[level][cell] = new long[16];
                }

                counts[bit] += sign * (long)bytes;
                if (dirty)
                {
                    _dirty.Add((level, cell));
                }
            }
        }
    }
}
