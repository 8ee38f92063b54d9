using Audit.Domain.Events;
using Audit.Domain.Model;
using Ctx = Audit.Domain.Stage2.Arm64FaultContext;

namespace Audit.Domain.Stage2;

/// <summary>
/// Whether user_mem_abort maps the pfn non-cacheable: kvm_is_device_pfn (!pfn_valid before 5.14,
/// !pfn_is_map_memory 5.14 - 6.16), then from 6.17 the VMA's pgprot for PFNMAP/MIXEDMAP pfns outside
/// the linear map (s2_force_noncacheable), where a cacheable one needs FWB and DIC.
/// </summary>
internal static class Arm64Cacheable
{
    public static FaultResolved? PfnValid(Ctx c)
    {
        c.Device = !c.Vma.StructPage;
        c.Why.Add(Rules.Arm64PfnValid, c.Device
            ? "the pfn has no struct page (!pfn_valid): device memory, mapped non-cacheable"
            : "the pfn has a struct page (pfn_valid): cacheable", Facts.StructPage(c.Vma), Facts.Policy(c.S));
        return null;
    }

    public static FaultResolved? LinearMap(Ctx c)
    {
        c.Device = !c.Vma.LinearMap;
        c.Why.Add(Rules.Arm64LinearMap, c.Device
            ? "the pfn is outside the kernel linear map (!pfn_is_map_memory): device memory, mapped non-cacheable; the VMA's pgprot is not consulted"
            : "the pfn is in the kernel linear map: cacheable", Facts.LinearMap(c.Vma), Facts.VmaMemType(c.Vma), Facts.Policy(c.S));
        return null;
    }

    // Most faults land in a VMA already faulted in: the same step, cited again (StepMemo).
    private static readonly StepMemo ForceNonCacheableMemo = new(), CacheablePfnmapMemo = new();

    public static FaultResolved? ForceNonCacheable(Ctx c)
    {
        var vma = c.Vma;
        if (!vma.IsPfnOrMixedMap || vma.LinearMap)
        {
            c.Why.Add(ForceNonCacheableMemo, Rules.Arm64ForceNonCacheable, vma.IsPfnOrMixedMap
                ? "PFNMAP/MIXEDMAP whose pfn is in the linear map: cacheable"
                : "not a PFNMAP/MIXEDMAP VMA: assumed cacheable", Facts.VmaFlags(vma), Facts.LinearMap(vma), Facts.Policy(c.S));
            return null;
        }

        if (!vma.Cacheable)
        {
            c.Device = true;
            c.Why.Add(Rules.Arm64ForceNonCacheable, "VM_PFNMAP VMA outside the linear map with a non-cacheable pgprot: forced non-cacheable",
                Facts.VmaFlags(vma), Facts.VmaMemType(vma), Facts.LinearMap(vma));
        }

        return null;
    }

    public static FaultResolved? CacheablePfnmap(Ctx c)
    {
        var vma = c.Vma;
        if (c.Device || !vma.IsPfnOrMixedMap || vma.LinearMap)
        {
            return null;
        }

        if (c.S.Host?.Caps.Fwb == true && c.S.Host?.Caps.CacheDic == true)
        {
            c.Why.Add(CacheablePfnmapMemo, Rules.Arm64CacheablePfnmap, "cacheable PFNMAP outside the linear map, and the host has FWB and DIC: mapped cacheable", Facts.VmaFlags(vma), Facts.VmaMemType(vma), c.S.FwbFact, c.S.DicFact);
            return null;
        }

        c.Why.Add(CacheablePfnmapMemo, Rules.Arm64CacheablePfnmap, "cacheable PFNMAP outside the linear map, but the host lacks FWB or DIC: the fault fails with -EFAULT", Facts.VmaFlags(vma), Facts.VmaMemType(vma), c.S.FwbFact, c.S.DicFact);
        return c.Done(FaultOutcome.Error, Errno.EFAULT);
    }
}
