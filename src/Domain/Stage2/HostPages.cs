using Audit.Domain.Events;
using Audit.Domain.Model;
using static Audit.Domain.Stage2.HostMapping;

namespace Audit.Domain.Stage2;

/// <summary>How host-side events change what the host page table holds (huge pages split, pages written).</summary>
internal static class HostPages
{
    /// <summary>The advices whose zap of the range reaches KVM's MMU notifier.</summary>
    public static bool Invalidates(Advice a) =>
        a is Advice.DontNeed or Advice.DontNeedLocked or Advice.Free or Advice.Remove or Advice.PageOut or Advice.HwPoison;

    public static void Advise(RunState s, long seq, VmaAdvised a)
    {
        var (start, end) = (a.Range.Start.Value, a.Range.End.Value);
        switch (a.Kind)
        {
            case Advice.HwPoison:
                s.Poisoned.Set(start, end, seq);
                break;
            case Advice.DontNeed or Advice.DontNeedLocked or Advice.Free or Advice.Remove:
                // The pages are zapped: the next read finds the zero page (or a fresh one) again.
                SplitPartialHugePages(s, seq, start, end);
                s.HostWritten.Remove(start, end);
                break;
            case Advice.PopulateWrite:
                // The VMM faulted the pages in writable: their ptes are writable now.
                foreach (var v in s.Vmas.Overlapping(start, end).Where(v => (v.Value.Prot & Perms.W) != 0))
                {
                    s.HostWritten.Set(Math.Max(start, v.Start), Math.Min(end, v.End), seq);
                }

                break;
            case Advice.Collapse:
                s.HostSplit.Remove(start & ~(P2M - 1), Arm64Fault.AlignUp(end, P2M));
                break;
        }
    }

    /// <summary>
    /// A munmap, mprotect or zap of part of a transparent huge page splits it (split_huge_pmd): the rest of
    /// that 2M range is mapped with 4K ptes from then on, which is what get_user_mapping_size reads.
    /// </summary>
    public static void SplitPartialHugePages(RunState s, long seq, ulong start, ulong end)
    {
        foreach (var edge in new[] { start, end })
        {
            if ((edge & (P2M - 1)) == 0)
            {
                continue;
            }

            // The page just inside the range at this edge: its huge page is the one cut.
            var inside = new Addresses.Hva(edge == end ? end - 1 : edge);
            var chunk = edge & ~(P2M - 1);
            if (s.VmaAt(inside) is { } vma && ThpBacked(s, vma, inside, out _))
            {
                s.HostSplit.Set(chunk, chunk + P2M, seq);
            }
        }
    }
}
