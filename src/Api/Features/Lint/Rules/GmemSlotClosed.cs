using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Api.Features.Lint.Rules;

/// <summary>
/// A guest_memfd closed while memslots are still bound to it: kvm_gmem_release zaps the private
/// mappings, and later private faults in those slots fail (no pfn from guest_memfd).
/// </summary>
public sealed class GmemSlotClosed : LintRule
{
    public override LintRuleInfo Info { get; } = new(
        "gmem-slot-closed", Severity.Warning,
        "Memslot bound to a closed guest_memfd",
        "The VMM closed a guest_memfd while a memslot still referred to it. KVM drops the private mappings of the slot and cannot fault private memory there again.",
        "Delete the memslots bound to a guest_memfd (KVM_SET_USER_MEMORY_REGION2 with size 0) before closing it.");

    public override void Observe(LintStep step, RunState before)
    {
        if (step.Input is not GuestMemfdClosed c)
        {
            return;
        }

        foreach (var slot in before.Slots.Values.Where(s => s.HasGmem && s.GuestMemfd == c.Fd).OrderBy(s => s.Slot))
        {
            Report($"guest_memfd {c.Fd} closed while slot {slot.Slot} (gpa {slot.Gpa}, {Fmt.Size(slot.Size)}) is bound to it", [step.Seq, slot.Seq]);
        }
    }
}
