using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Domain.Stage2;

/// <summary>What removes or write-protects stage-2 entries (domain.md section 6). Pure: computes ranges from state.</summary>
internal static class Invalidation
{
    /// <summary>The gpa ranges an MMU-notifier range over [start, end) of hva reaches, through the memslots of this moment.</summary>
    public static List<(ulong Start, ulong End)> GpaRangesOfHva(RunState s, ulong start, ulong end)
    {
        var result = new List<(ulong, ulong)>();
        foreach (var slot in s.Slots.Values)
        {
            if (slot.AsId != 0)
            {
                continue;
            }

            var hs = Math.Max(start, slot.Hva.Value);
            var he = Math.Min(end, slot.Hva.Value + slot.Size);
            if (hs < he)
            {
                result.Add((slot.Gpa.Value + (hs - slot.Hva.Value), slot.Gpa.Value + (he - slot.Hva.Value)));
            }
        }

        return result;
    }

    /// <summary>
    /// The entries to remove for these gpa ranges: any block overlapping a range goes whole.
    /// <paramref name="keep"/> filters entries out (x86 KVM_FILTER_SHARED keeps private mappings).
    /// </summary>
    public static ValueList<GpaRange> Unmap(RunState s, IEnumerable<(ulong Start, ulong End)> ranges, Func<S2Entry, bool>? keep = null)
    {
        var removed = new List<(ulong Start, ulong End)>();
        foreach (var (start, end) in ranges)
        {
            foreach (var e in s.Stage2.Overlapping(start, end))
            {
                if (keep is not null && keep(e.Value))
                {
                    continue;
                }

                var g = e.Value.Granule;
                var from = Math.Max(e.Start, start & ~(g - 1));
                var to = Math.Min(e.End, Arm64Fault.AlignUp(end, g));
                removed.Add((from, to));
            }
        }

        return Merge(removed);
    }

    public static ValueList<GpaRange> Everything(RunState s) => Merge(s.Stage2.All().Select(i => (i.Start, i.End)).ToList());

    public static ValueList<GpaRange> Merge(List<(ulong Start, ulong End)> ranges)
    {
        if (ranges.Count == 0)
        {
            return ValueList<GpaRange>.Empty;
        }

        ranges.Sort((a, b) => a.Start.CompareTo(b.Start));
        var merged = new List<GpaRange>();
        var (cs, ce) = ranges[0];
        foreach (var (st, en) in ranges.Skip(1))
        {
            if (st <= ce)
            {
                ce = Math.Max(ce, en);
            }
            else
            {
                merged.Add(new GpaRange(new Gpa(cs), new Gpa(ce)));
                (cs, ce) = (st, en);
            }
        }

        merged.Add(new GpaRange(new Gpa(cs), new Gpa(ce)));
        return new ValueList<GpaRange>(merged);
    }

    /// <summary>The gfn ranges bound to a guest_memfd's file range [offset, end).</summary>
    public static List<(ulong Start, ulong End)> GpaRangesOfGmem(RunState s, GuestMemfdState g, ulong offset, ulong end)
    {
        var result = new List<(ulong, ulong)>();
        foreach (var b in g.Bindings.Overlapping(offset, end))
        {
            if (!s.Slots.TryGetValue(b.Value, out var slot))
            {
                continue;
            }

            var os = Math.Max(offset, b.Start);
            var oe = Math.Min(end, b.End);
            result.Add((slot.Gpa.Value + (os - slot.GuestMemfdOffset), slot.Gpa.Value + (oe - slot.GuestMemfdOffset)));
        }

        return result;
    }
}
