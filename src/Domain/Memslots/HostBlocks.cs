using Audit.Domain.Model;

namespace Audit.Domain.Memslots;

/// <summary>
/// Which stage-2 blocks a backing and a memslot could give at most: what lint and the other readers of a
/// run ask without deciding a fault (the fault itself is decided by the engine's rules).
/// </summary>
public static class HostBlocks
{
    public const ulong P2M = 2UL << 20, P1G = 1UL << 30;

    /// <summary>
    /// The largest block the VMA's backing could be mapped with (0: nothing beyond 4K): a PFNMAP/MIXEDMAP
    /// up to 1G (get_vma_page_shift), hugetlb its page size, a THP 2M (transparent_hugepage_adjust).
    /// </summary>
    public static ulong LargestBlock(VmaState v) =>
        v.IsPfnOrMixedMap ? P1G
        : v.Backing.HostPageSize is >= P2M and var p ? p
        : v.Backing.Thp == true ? P2M
        : 0;

    /// <summary>fault_supports_stage2_huge_mapping's first test: gpa and hva congruent modulo the block size.</summary>
    public static bool Congruent(ulong gpa, ulong hva, ulong size) => (gpa & (size - 1)) == (hva & (size - 1));
}
