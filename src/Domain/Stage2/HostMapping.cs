using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Domain.Stage2;

/// <summary>
/// What the host's own page table says about an hva, as far as the trace tells: the size of the
/// mapping (get_user_mapping_size on arm64, host_pfn_mapping_level on x86) and whether the pte is
/// writable (what hva_to_pfn returns to a read fault).
/// </summary>
internal static class HostMapping
{
    public const ulong P4K = 4096, P2M = 2UL << 20, P1G = 1UL << 30;

    /// <summary>
    /// A transparent huge page backs the hva: the VMA says THP, the 2M range around the hva lies inside
    /// the VMA (a THP cannot cross it), and no partial munmap, mprotect or madvise split it since.
    /// </summary>
    public static bool ThpBacked(RunState s, VmaState vma, Hva hva, out Fact? splitBy)
    {
        splitBy = null;
        if (vma.Backing.Thp != true)
        {
            return false;
        }

        var start = hva.Value & ~(P2M - 1);
        if (start < vma.Start || start + P2M > vma.End)
        {
            return false;
        }

        if (s.HostSplit.TryFind(hva.Value, out var split))
        {
            splitBy = new Fact("host.thp_split", $"the huge page at {Hex.Format(start)} was split", split.Value);
            return false;
        }

        return true;
    }

    /// <summary>
    /// hva_to_pfn asks for a writable page first, so a read fault gets W when the host pte already is
    /// writable: MAP_SHARED shmem/memfd (no write-notify), shared hugetlb (make_huge_pte with VM_SHARED),
    /// a shared writable PFNMAP, or a page written before (a guest write, MADV_POPULATE_WRITE). An
    /// untouched private anonymous page is the shared zero page: no W.
    /// </summary>
    public static bool ReadGetsWritable(RunState s, VmaState vma, Hva hva, out string why, out Fact fact)
    {
        var writableVma = (vma.Prot & Perms.W) != 0;
        var shared = (vma.Flags & VmaFlags.VM_SHARED) != 0;
        var hugetlb = vma.Backing.Kind == BackingKind.Hugetlb || (vma.Flags & VmaFlags.VM_HUGETLB) != 0;
        fact = Facts.VmaProt(vma);
        if (vma.IsPfnOrMixedMap)
        {
            var w = writableVma && shared;
            why = w ? "PFNMAP/MIXEDMAP: a shared writable mapping has writable ptes" : "PFNMAP/MIXEDMAP without a shared writable mapping: read-only ptes";
            fact = Facts.VmaFlags(vma);
            return w;
        }

        if (writableVma && shared && (vma.Backing.Kind == BackingKind.Shmem || hugetlb))
        {
            why = hugetlb
                ? "shared writable hugetlb: make_huge_pte maps it writable on a read, so the read fault gets W"
                : "shared writable shmem/memfd: no write-notify, the host pte is writable on a read, so the read fault gets W";
            fact = Facts.Vma(vma);
            return true;
        }

        if (writableVma && s.HostWritten.TryFind(hva.Value, out var written))
        {
            why = "the host page was written before (a guest write or MADV_POPULATE_WRITE): its pte is writable, so the read fault gets W";
            fact = new Fact("host.pte", "writable", written.Value);
            return true;
        }

        why = shared
            ? "a shared file mapping is write-notified (or the VMA is not writable): the host pte is read-only until a write, no W"
            : "private memory not written yet: the host maps the zero page (or a read-only page), no W until the guest writes";
        return false;
    }
}
