namespace Audit.Domain.Model;

/// <summary>A rule of the model: a stable id, the kernel function it models, where, and for which kernels.</summary>
public sealed record Rule(string Id, string Function, string File, string Kernels);

/// <summary>
/// Every rule the engine can record, in catalogue order. docs/rules.md lists the same ids; a test
/// keeps the two in step. Ids never change once released: explanations in stored runs cite them.
/// </summary>
public static class Rules
{
    private const string Arm64Mmu = "arch/arm64/kvm/mmu.c";
    private const string KvmMain = "virt/kvm/kvm_main.c";
    private const string Gmem = "virt/kvm/guest_memfd.c";
    private const string X86Mmu = "arch/x86/kvm/mmu/mmu.c";
    private const string Arm64Pgtable = "arch/arm64/kvm/hyp/pgtable.c";

    // arm64 stage-2 faults (domain.md section 3).
    public static readonly Rule Arm64IpaRange = new("arm64.kvm_handle_guest_abort.ipa_range", "kvm_handle_guest_abort", Arm64Mmu, "all");
    public static readonly Rule Arm64NoMemslot = new("arm64.kvm_handle_guest_abort.no_memslot", "kvm_handle_guest_abort, io_mem_abort", Arm64Mmu + ", arch/arm64/kvm/mmio.c", "all");
    public static readonly Rule Arm64AccessFlag = new("arm64.handle_access_fault", "handle_access_fault", Arm64Mmu, "all");
    public static readonly Rule Arm64GmemAbort = new("arm64.gmem_abort", "gmem_abort", Arm64Mmu, "6.18+");
    public static readonly Rule Arm64PermNotWriteExec = new("arm64.kvm_handle_guest_abort.perm_read", "kvm_handle_guest_abort", Arm64Mmu, "all");
    public static readonly Rule Arm64NoVma = new("arm64.user_mem_abort.vma_lookup", "user_mem_abort (vma_lookup)", Arm64Mmu, "all");
    public static readonly Rule Arm64LoggingForcePte = new("arm64.user_mem_abort.logging_force_pte", "user_mem_abort (logging_active)", Arm64Mmu, "all");
    public static readonly Rule Arm64VmaPageShift = new("arm64.get_vma_page_shift", "get_vma_page_shift", Arm64Mmu, "5.14+ (PFNMAP blocks); hugetlb all");
    public static readonly Rule Arm64HugeMapping = new("arm64.fault_supports_stage2_huge_mapping", "fault_supports_stage2_huge_mapping", Arm64Mmu, "all");
    public static readonly Rule Arm64Thp = new("arm64.transparent_hugepage_adjust", "transparent_hugepage_adjust", Arm64Mmu, "all");
    public static readonly Rule Arm64Hwpoison = new("arm64.user_mem_abort.hwpoison", "user_mem_abort (kvm_send_hwpoison_signal)", Arm64Mmu, "all");
    public static readonly Rule Arm64PfnValid = new("arm64.user_mem_abort.device_pfn_valid", "kvm_is_device_pfn (!pfn_valid)", Arm64Mmu, "<= 5.13");
    public static readonly Rule Arm64LinearMap = new("arm64.user_mem_abort.device_linear_map", "kvm_is_device_pfn (!pfn_is_map_memory)", Arm64Mmu, "5.14 - 6.16");
    public static readonly Rule Arm64ForceNonCacheable = new("arm64.user_mem_abort.force_noncacheable", "user_mem_abort (s2_force_noncacheable, kvm_vma_is_cacheable)", Arm64Mmu, "6.17+");
    public static readonly Rule Arm64CacheablePfnmap = new("arm64.user_mem_abort.cacheable_pfnmap", "user_mem_abort (kvm_supports_cacheable_pfnmap)", Arm64Mmu, "6.17+");
    public static readonly Rule Arm64DirtyLogReadOnly = new("arm64.user_mem_abort.dirty_log_read_only", "user_mem_abort (logging_active && !write_fault)", Arm64Mmu, "all; 6.17+ exempts device PFNMAP/MIXEDMAP");
    public static readonly Rule Arm64ExecNonCacheable = new("arm64.user_mem_abort.exec_noncacheable", "user_mem_abort (exec_fault && device -> -ENOEXEC)", Arm64Mmu, "all");
    public static readonly Rule Arm64Mte = new("arm64.sanitise_mte_tags", "sanitise_mte_tags, kvm_vma_mte_allowed", Arm64Mmu, "all");
    public static readonly Rule Arm64HostWritable = new("arm64.user_mem_abort.host_writable", "__kvm_faultin_pfn (writable)", Arm64Mmu, "all");
    public static readonly Rule Arm64Prot = new("arm64.user_mem_abort.prot", "user_mem_abort (KVM_PGTABLE_PROT_*)", Arm64Mmu, "all; NormalNC for ALLOW_ANY_UNCACHED from 6.9");
    public static readonly Rule Arm64RelaxPerms = new("arm64.user_mem_abort.relax_perms", "kvm_pgtable_stage2_relax_perms", Arm64Mmu, "all");
    public static readonly Rule Arm64Map = new("arm64.kvm_pgtable_stage2_map", "kvm_pgtable_stage2_map", Arm64Pgtable, "all");

    // x86 TDP/shadow faults (section 4).
    public static readonly Rule X86PrivateMismatch = new("x86.kvm_mmu_faultin_pfn.private_mismatch", "kvm_mmu_faultin_pfn (kvm_mmu_prepare_memory_fault_exit)", X86Mmu, "6.8+ (before the memslot lookup from 6.10)");
    public static readonly Rule X86NoMemslot = new("x86.kvm_mmu_faultin_pfn.no_memslot", "kvm_mmu_faultin_pfn, kvm_handle_noslot_fault", X86Mmu, "all");
    public static readonly Rule X86Gmem = new("x86.kvm_mmu_faultin_pfn_gmem", "kvm_mmu_faultin_pfn_gmem (kvm_gmem_get_pfn)", X86Mmu, "6.8+");
    public static readonly Rule X86ReadOnlyWrite = new("x86.kvm_mmu_faultin_pfn.readonly_write", "__kvm_mmu_faultin_pfn (write to a read-only slot is emulated)", X86Mmu, "all");
    public static readonly Rule X86NoVma = new("x86.hva_to_pfn.no_vma", "hva_to_pfn (KVM_PFN_ERR_FAULT)", KvmMain, "all");
    public static readonly Rule X86Level = new("x86.kvm_mmu_hugepage_adjust", "kvm_mmu_hugepage_adjust, kvm_mmu_max_mapping_level", X86Mmu, "all");
    public static readonly Rule X86MmioPfn = new("x86.kvm_is_mmio_pfn", "kvm_is_mmio_pfn", "arch/x86/kvm/mmu/spte.c", "all");
    public static readonly Rule X86VmxMemtype = new("x86.vmx_get_mt_mask", "vmx_get_mt_mask", "arch/x86/kvm/vmx/vmx.c", "x86-vmx/6.10, 6.11, 6.16");
    public static readonly Rule X86SvmMemtype = new("x86.svm.npt_memtype", "make_spte (no get_mt_mask on SVM: guest PAT applies)", "arch/x86/kvm/svm/svm.c", "all");
    public static readonly Rule X86ShadowMemtype = new("x86.shadow.memtype", "make_spte (shadow_memtype_mask = 0)", "arch/x86/kvm/mmu/spte.c", "all");
    /// <summary>Applied by the stage-2 projection, not the engine: a translation fault that would rewrite the held leaf leaves it (ADR 0006).</summary>
    public static readonly Rule Arm64SameLeafStands = new("arm64.stage2_map_walker_try_leaf.same_leaf", "stage2_map_walker_try_leaf, stage2_pte_needs_update", Arm64Pgtable, "all");
    public static readonly Rule X86SpuriousSpte = new("x86.mmu_set_spte.spurious", "mmu_set_spte (RET_PF_SPURIOUS)", X86Mmu, "all");
    public static readonly Rule X86Perms = new("x86.make_spte.perms", "make_spte", "arch/x86/kvm/mmu/spte.c", "all");
    public static readonly Rule X86ShadowCleanGpte = new("x86.shadow.protect_clean_gpte", "FNAME(protect_clean_gpte) in FNAME(walk_addr_generic)", "arch/x86/kvm/mmu/paging_tmpl.h", "x86-shadow");

    // Memslots (sections 3, 5, 7).
    public static readonly Rule SlotFlags = new("kvm_set_memory_region.check_flags", "check_memory_region_flags", KvmMain, "all");
    public static readonly Rule SlotIds = new("kvm_set_memory_region.slot_id", "kvm_set_memory_region (as_id, id)", KvmMain, "all");
    public static readonly Rule SlotAlignment = new("kvm_set_memory_region.alignment", "kvm_set_memory_region (PAGE_SIZE, overflow, access_ok)", KvmMain, "all");
    public static readonly Rule SlotChangeKind = new("kvm_set_memory_region.change", "kvm_set_memory_region (create, delete, move, flags-only)", KvmMain, "all");
    public static readonly Rule SlotOverlap = new("kvm_set_memory_region.overlap", "kvm_set_memory_region (kvm_check_memslot_overlap)", KvmMain, "all");
    public static readonly Rule GmemBind = new("kvm_gmem_bind", "kvm_gmem_bind", Gmem, "6.8+");
    public static readonly Rule Arm64SlotIpa = new("arm64.kvm_arch_prepare_memory_region.ipa_size", "kvm_arch_prepare_memory_region", Arm64Mmu, "all");
    public static readonly Rule Arm64SlotGmemMmap = new("arm64.kvm_arch_prepare_memory_region.gmem_mmap", "kvm_arch_prepare_memory_region (kvm_gmem_supports_mmap)", Arm64Mmu, "6.18+");
    public static readonly Rule Arm64SlotMte = new("arm64.kvm_arch_prepare_memory_region.mte", "kvm_arch_prepare_memory_region (kvm_vma_mte_allowed)", Arm64Mmu, "all (VM_SHARED rule before 6.2)");
    public static readonly Rule Arm64SlotPfnmapLog = new("arm64.kvm_arch_prepare_memory_region.pfnmap_dirty_log", "kvm_arch_prepare_memory_region", Arm64Mmu, "all");
    public static readonly Rule Arm64SlotCacheablePfnmap = new("arm64.kvm_arch_prepare_memory_region.cacheable_pfnmap", "kvm_arch_prepare_memory_region (kvm_supports_cacheable_pfnmap)", Arm64Mmu, "6.17+");
    public static readonly Rule WhatIfMemslotFlag = new("whatif.memslot_flag.enable_cacheable_pfnmap", "kvm_arch_prepare_memory_region (KVM_MEM_ENABLE_CACHEABLE_PFNMAP, series v4-v6)", Arm64Mmu, "arm64/6.17+memslot-flag");
    public static readonly Rule WhatIfForceCheck = new("whatif.force_check.force_cacheable_pfnmap", "kvm_arch_prepare_memory_region (KVM_MEM_FORCE_CACHEABLE_PFNMAP, seed 000 sketch)", Arm64Mmu, "arm64/6.17+force-check");
    public static readonly Rule X86SlotMaxGfn = new("x86.kvm_arch_prepare_memory_region.max_gfn", "kvm_arch_prepare_memory_region (kvm_mmu_max_gfn)", "arch/x86/kvm/x86.c", "all");

    // guest_memfd and memory attributes (section 5).
    public static readonly Rule GmemCreate = new("kvm_gmem_create", "kvm_gmem_create, __kvm_gmem_create", Gmem, "6.8+ x86, 6.18+ arm64");
    public static readonly Rule Attributes = new("kvm_vm_ioctl_set_mem_attributes", "kvm_vm_ioctl_set_mem_attributes", KvmMain, "6.8+");
    public static readonly Rule GmemConvert = new("whatif.kvm_gmem_convert", "kvm_gmem_convert (RFC May 2025, SET_MEMORY_ATTRIBUTES2)", Gmem, "proposal");
    public static readonly Rule GmemInvalidate = new("kvm_gmem_invalidate", "kvm_gmem_punch_hole, kvm_gmem_release", Gmem, "6.8+");

    // Invalidations (section 6).
    public static readonly Rule MmuNotifier = new("kvm_mmu_notifier_invalidate_range_start", "kvm_mmu_notifier_invalidate_range_start", KvmMain, "all");
    public static readonly Rule FlushMemslot = new("kvm_arch_flush_shadow_memslot", "kvm_arch_flush_shadow_memslot (x86: kvm_mmu_zap_all_fast with SLOT_ZAP_ALL)", KvmMain, "all");
    public static readonly Rule DirtyLogEnable = new("kvm_arch_commit_memory_region.dirty_log", "kvm_mmu_wp_memory_region / kvm_mmu_slot_apply_flags", Arm64Mmu + ", arch/x86/kvm/x86.c", "all");
    public static readonly Rule AttributeZap = new("kvm_vm_set_mem_attributes.zap", "kvm_vm_set_mem_attributes (kvm_mmu_unmap_gfn_range)", KvmMain, "6.8+");
    public static readonly Rule NoncoherentDmaZap = new("x86.kvm_noncoherent_dma_assignment_start_or_stop", "kvm_noncoherent_dma_assignment_start_or_stop", "arch/x86/kvm/x86.c", "all");

    // Observations compared with the model.
    public static readonly Rule ObservedErrno = new("observe.recorded_errno", "the ioctl result the trace recorded", "-", "all");
    public static readonly Rule ObservedMapping = new("observe.stage2_mapping", "the stage-2/EPT entry the trace observed", "-", "all");
    public static readonly Rule ObservedMemoryFault = new("observe.memory_fault_exit", "the KVM_EXIT_MEMORY_FAULT the VMM saw", "-", "all");

    public static IReadOnlyList<Rule> All { get; } = typeof(Rules)
        .GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
        .Where(f => f.FieldType == typeof(Rule))
        .Select(f => (Rule)f.GetValue(null)!)
        .ToList();
}
