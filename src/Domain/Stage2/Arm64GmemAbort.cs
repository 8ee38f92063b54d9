using Audit.Domain.Events;
using Audit.Domain.Model;
using Ctx = Audit.Domain.Stage2.Arm64FaultContext;

namespace Audit.Domain.Stage2;

/// <summary>gmem_abort (6.18+): a guest_memfd-backed memslot maps from the file, always Normal, page size.</summary>
internal static class Arm64GmemAbort
{
    public static FaultResolved? Decide(Ctx c)
    {
        var slot = c.Slot;
        if (!slot.HasGmem)
        {
            return null;
        }

        var s = c.S;
        var offset = slot.GuestMemfdOffset + (c.F.Gpa.AlignDown(4096).Value - slot.Gpa.Value);
        if (slot.GuestMemfd is not { } fd || !s.Gmem.TryGetValue(fd, out var g) || g.ClosedSeq is not null)
        {
            var closed = slot.GuestMemfd is { } f2 && s.Gmem.TryGetValue(f2, out var g2) ? g2.ClosedSeq ?? g2.Seq : slot.Seq;
            c.Why.Add(Rules.Arm64GmemAbort, "guest_memfd-backed memslot, but its guest_memfd was released: kvm_gmem_get_pfn fails, KVM_EXIT_MEMORY_FAULT", c.Fault, Facts.Slot(slot), new Fact("guest_memfd", $"fd {slot.GuestMemfd}", closed));
            return c.Done(FaultOutcome.MemoryFaultExit, Errno.EFAULT);
        }

        if (g.Holes.TryFind(offset, out var hole))
        {
            c.Why.Add(Rules.GmemFreshFolio, $"a hole was punched at guest_memfd offset {Fmt.Hex(offset)}: kvm_gmem_get_folio allocates a fresh folio and the page maps again", c.Fault, new Fact("guest_memfd.punch_hole", $"fd {fd}", hole.Value));
        }

        var dic = s.Host?.Caps.CacheDic == true;
        var perms = Perms.R | (slot.ReadOnly ? 0 : Perms.W) | (c.F.Access == Access.Exec || dic ? Perms.X : 0);
        var m = new Mapping(c.F.Gpa.AlignDown(4096), 4096, Stage2MemType.Normal, null, perms);
        c.Why.Add(Rules.Arm64GmemAbort, $"guest_memfd-backed memslot (gmem_abort): always Normal, page size: {Fmt.Mapping(m)}", c.Fault, Facts.Slot(slot), new Fact("guest_memfd", $"fd {fd} size {Fmt.Hex(g.Size)} flags {Fmt.Flags(g.Flags)}", g.Seq), s.DicFact);
        return c.Done(FaultOutcome.Mapped, 0, m);
    }
}
