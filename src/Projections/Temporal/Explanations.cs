using Audit.Domain;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Projections.Temporal;

/// <summary>
/// The explanation steps `why` shows for unmaps and write-protection, citing the rule the engine carried on
/// the event (runs stored before rules were carried fall back to the rule of the cause's kind).
/// </summary>
public static class Explanations
{
    public static ExplanationStep Unmapped(long lo, long hi, long causeSeq, InputEvent? cause, long unmapSeq, string? rule) => new(
        rule ?? StoredBeforeRules(cause).Id,
        $"unmapped [{Hex.Format((ulong)lo)}, {Hex.Format((ulong)hi)}) because of {CauseText(cause)} (seq {causeSeq})",
        ValueList.Of(new Fact("cause", cause?.GetType().Name ?? "unknown", causeSeq), new Fact("range", Fmt.Range((ulong)lo, (ulong)hi), unmapSeq)));

    public static ExplanationStep WriteProtected(long causeSeq, string? rule) => new(
        rule ?? Rules.DirtyLogEnable.Id,
        rule == Rules.X86Pml.Id
            ? "dirty logging was enabled on the memslot: with PML the huge pages were split and the 4K entries kept W (dirty bits cleared)"
            : "dirty logging was enabled on the memslot: the mapping was write-protected",
        ValueList.Of(new Fact("memslot.flags", "KVM_MEM_LOG_DIRTY_PAGES", causeSeq)));

    private static Rule StoredBeforeRules(InputEvent? cause) => cause switch
    {
        MemslotSet => Rules.FlushMemslot,
        MemoryAttributesSet => Rules.AttributeZap,
        NoncoherentDmaChanged => Rules.NoncoherentDmaZap,
        GuestMemfdFallocated or GuestMemfdClosed => Rules.GmemInvalidate,
        GuestMemfdConverted => Rules.GmemConvert,
        _ => Rules.MmuNotifier,
    };

    private static string CauseText(InputEvent? cause) => cause switch
    {
        VmaUnmapped v => $"munmap of {v.Range}",
        VmaProtectionChanged v => $"mprotect of {v.Range}",
        VmaAdvised v => $"{v.Advice} on {v.Range}",
        VmaMapped v => $"a new mapping over {v.Range}",
        MmuNotifierInvalidated n => $"an MMU-notifier invalidation of [{n.Start}, {n.End})",
        MemslotSet m => m.Size == 0 ? $"the deletion of memslot {m.Slot}" : $"a change of memslot {m.Slot}",
        MemoryAttributesSet a => $"the attribute change of [{a.Gpa}, {Hex.Format(a.Gpa.Value + a.Size)}) to {(a.Private ? "private" : "shared")}",
        NoncoherentDmaChanged d => $"non-coherent DMA {(d.Attached ? "attach" : "detach")}",
        GuestMemfdFallocated g => $"a hole punched in guest_memfd fd {g.Fd}",
        GuestMemfdClosed g => $"closing guest_memfd fd {g.Fd}",
        GuestMemfdConverted c => $"converting guest_memfd fd {c.Fd} to {c.To.ToString().ToLowerInvariant()}",
        GuestFaulted f => $"a fault at {f.Gpa} that mapped a page inside the block",
        _ => "an invalidation",
    };
}
