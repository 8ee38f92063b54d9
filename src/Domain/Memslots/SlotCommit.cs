using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Domain.Stage2;

namespace Audit.Domain.Memslots;

/// <summary>
/// What committing a memslot change does to the stage-2 tables: kvm_arch_flush_shadow_memslot on a
/// delete or move, kvm_arch_commit_memory_region / kvm_mmu_slot_apply_flags when dirty logging starts.
/// </summary>
internal static class SlotCommit
{
    public static IEnumerable<DerivedEvent> Derived(RunState s, long seq, SlotChange change, MemslotState old, MemslotSet m)
    {
        if (change is SlotChange.Delete or SlotChange.Move && old.AsId == 0)
        {
            var (rule, all) = Flush(s);
            var ranges = all ? Invalidation.Everything(s) : Invalidation.Unmap(s, [(old.Gpa.Value, old.End)]);
            if (ranges.Count > 0)
            {
                yield return new Stage2Unmapped(seq, ranges, rule.Id);
            }
        }
        else if (change == SlotChange.FlagsOnly && !old.LogDirty && (m.Flags & MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES) != 0
            && s.ManualProtectInitSetSeq is null)
        {
            var ranges = Invalidation.Merge(s.Stage2.Overlapping(old.Gpa.Value, old.End).Select(i => (Math.Max(i.Start, old.Gpa.Value), Math.Min(i.End, old.End))).ToList());
            if (ranges.Count > 0)
            {
                // x86 splits huge pages eagerly (eager_page_split); arm64 only with KVM_CAP_ARM_EAGER_SPLIT_CHUNK_SIZE.
                var split = s.Arch == Arch.X86_64 || s.EagerSplitSeq is not null;
                var pml = s.Policy.Holds(Rules.X86Pml) && s.Host?.Caps.Pml != false;
                yield return new Stage2WriteProtected(seq, ranges, split, (pml ? Rules.X86Pml : Rules.DirtyLogEnable).Id, pml);
            }
        }
    }

    /// <summary>
    /// Which gfns a delete or move zaps. x86 before 6.12: kvm_mmu_zap_all_fast for every VM; from 6.12
    /// only default-type VMs with KVM_X86_QUIRK_SLOT_ZAP_ALL (on unless disabled) zap everything, other
    /// VM types the slot's gfns. arm64: the slot's range.
    /// </summary>
    private static (Rule Rule, bool All) Flush(RunState s)
    {
        if (s.Arch != Arch.X86_64)
        {
            return (Rules.FlushMemslot, false);
        }

        if (s.Policy.Holds(Rules.X86ZapAllFast))
        {
            return (Rules.X86ZapAllFast, true);
        }

        var zapAll = s.VmType == VmType.Default && !s.DisabledQuirks.ContainsKey(X86Quirk.SlotZapAll);
        return (zapAll ? Rules.X86SlotZapAllQuirk : Rules.FlushMemslot, zapAll);
    }
}
