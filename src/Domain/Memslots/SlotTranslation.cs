using Audit.Domain.Addresses;

namespace Audit.Domain.Memslots;

/// <summary>
/// How a memslot maps a gpa (__gfn_to_hva_memslot, kvm_gmem_get_index): the same offset into the slot
/// lands at that offset from the slot's hva and from its guest_memfd offset. Query handlers that follow a
/// gpa to its VMA or guest_memfd page ask here instead of doing the arithmetic themselves.
/// </summary>
public static class SlotTranslation
{
    public static Hva HvaOf(ulong slotGpa, ulong slotHva, Gpa gpa) => new(slotHva + (gpa.Value - slotGpa));

    public static ulong GmemOffsetOf(ulong slotGpa, ulong slotGmemOffset, Gpa gpa) => slotGmemOffset + (gpa.Value - slotGpa);
}
