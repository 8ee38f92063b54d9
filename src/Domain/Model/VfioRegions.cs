using Audit.Domain.Events;

namespace Audit.Domain.Model;

/// <summary>
/// The write-combine proposal of seed 004 (domain.md 5b): a VfioRegionAttributesSet does not change existing
/// mappings, but a later mmap of that region range gets the matching host memory type. vfio-pci places region
/// N at file offset N &lt;&lt; 40 (VFIO_PCI_INDEX_TO_OFFSET), so a VMA's vm_pgoff names its region and offset.
/// </summary>
internal static class VfioRegions
{
    private const int RegionShift = 40;

    public static HostMemType? MemTypeOf(string attr, Arch arch) => (attr.Trim().ToLowerInvariant(), arch) switch
    {
        ("wc", Arch.Arm64) => HostMemType.MT_NORMAL_NC,
        ("nc", Arch.Arm64) => HostMemType.MT_DEVICE_nGnRnE,
        ("device", Arch.Arm64) => HostMemType.MT_DEVICE_nGnRE,
        ("cacheable", Arch.Arm64) => HostMemType.MT_NORMAL,
        ("wc", _) => HostMemType.WC,
        ("nc", _) => HostMemType.UC_MINUS,
        ("device", _) => HostMemType.UC,
        ("cacheable", _) => HostMemType.WB,
        _ => null,
    };

    /// <summary>
    /// The pieces of a new VFIO VMA [from, to) whose region range a recorded request covers, with the
    /// memory type and the seq of the request; the rest of the VMA keeps the type its mmap recorded.
    /// </summary>
    public static IEnumerable<(ulong From, ulong To, HostMemType MemType, long Seq)> Overrides(RunState s, VmaMapped v, ulong from, ulong to)
    {
        if (v.Backing.Kind != BackingKind.Vfio || v.Backing.Pgoff is not { } pgoff)
        {
            yield break;
        }

        var fileStart = (pgoff << 12) + (from - v.Range.Start.Value);
        var region = (int)(fileStart >> RegionShift);
        var offsetStart = fileStart & ((1UL << RegionShift) - 1);
        foreach (var (request, seq) in s.VfioAttributes)
        {
            // A VMA records its file, not the PCI device behind a VFIO group fd: requests match by region.
            if (request.Region != region || MemTypeOf(request.Attr, s.Arch) is not { } memType)
            {
                continue;
            }

            var lo = Math.Max(offsetStart, request.Offset);
            var hi = Math.Min(offsetStart + (to - from), request.Offset + request.Length);
            if (lo < hi)
            {
                yield return (from + (lo - offsetStart), from + (hi - offsetStart), memType, seq);
            }
        }
    }
}
