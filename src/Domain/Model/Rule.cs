namespace Audit.Domain.Model;

/// <summary>Which policies a rule belongs to: an architecture, one x86 MMU flavour, or a never-merged proposal.</summary>
public enum RuleScope { Any, Arm64, X86, X86Vmx, X86Svm, X86Shadow, X86Tdp, WhatIfMemslotFlag, WhatIfForceCheck }

/// <summary>
/// A rule of the model: a stable id named after the kernel function it models, where that function
/// lives, and the releases in which it holds: from <see cref="Since"/> (null: the oldest modelled
/// release) up to but not including <see cref="Until"/> (null: still holds). A rule that changed at a
/// release is two rules with adjacent ranges; <see cref="Change"/> names the commit or series at the
/// boundary.
/// </summary>
public sealed record Rule(string Id, string Function, string File, KernelVersion? Since = null, KernelVersion? Until = null, RuleScope Scope = RuleScope.Any, string? Change = null)
{
    public bool HoldsIn(KernelVersion v) => (Since is not { } s || v >= s) && (Until is not { } u || v < u);

    public bool AppliesTo(Flavour flavour, WhatIf whatIf) => Scope switch
    {
        RuleScope.Arm64 => flavour == Flavour.Arm64,
        RuleScope.X86 => flavour != Flavour.Arm64,
        RuleScope.X86Vmx => flavour == Flavour.X86Vmx,
        RuleScope.X86Svm => flavour == Flavour.X86Svm,
        RuleScope.X86Shadow => flavour == Flavour.X86Shadow,
        RuleScope.X86Tdp => flavour is Flavour.X86Vmx or Flavour.X86Svm,
        RuleScope.WhatIfMemslotFlag => whatIf == WhatIf.MemslotFlag,
        RuleScope.WhatIfForceCheck => whatIf == WhatIf.ForceCheck,
        _ => true,
    };

    /// <summary>The releases as docs/rules.md prints them: `all`, `6.17+`, `<= 5.13`, `5.14 - 6.16`, `6.17`.</summary>
    public string Kernels => (Since, Until) switch
    {
        (null, null) => "all",
        ({ } s, null) => $"{s}+",
        (null, { } u) => $"<= {u.Previous}",
        ({ } s, { } u) when s == u.Previous => $"{s}",
        ({ } s, { } u) => $"{s} - {u.Previous}",
    };

    /// <summary>The flavours as docs/rules.md prints them.</summary>
    public string Flavours => Scope switch
    {
        RuleScope.Arm64 => "arm64",
        RuleScope.X86 => "x86",
        RuleScope.X86Vmx => "x86-vmx",
        RuleScope.X86Svm => "x86-svm",
        RuleScope.X86Shadow => "x86-shadow",
        RuleScope.X86Tdp => "x86-vmx, x86-svm",
        RuleScope.WhatIfMemslotFlag => "arm64/*+memslot-flag",
        RuleScope.WhatIfForceCheck => "arm64/*+force-check",
        _ => "all",
    };
}

/// <summary>
/// Every rule the engine can record, in catalogue order. docs/rules.md lists the same ids with the same
/// functions, files, releases and flavours; a test keeps the two in step. Ids never change once
/// released: explanations in stored runs cite them.
/// </summary>
public static class Rules
{
    private const string Arm64Mmu = "arch/arm64/kvm/mmu.c";
    private const string KvmMain = "virt/kvm/kvm_main.c";
    private const string Gmem = "virt/kvm/guest_memfd.c";
    private const string X86Mmu = "arch/x86/kvm/mmu/mmu.c";
    private const string X86 = "arch/x86/kvm/x86.c";
    private const string Spte = "arch/x86/kvm/mmu/spte.c";
    private const string Arm64Pgtable = "arch/arm64/kvm/hyp/pgtable.c";
    private const string Emulate = "arch/arm64/include/asm/kvm_emulate.h";
    private static readonly KernelVersion V5_14M = new(5, 14), V5_19 = new(5, 19), V5_14 = new(5, 14), V6_2 = new(6, 2), V6_8 = new(6, 8), V6_9 = new(6, 9),
        V6_10 = new(6, 10), V6_11 = new(6, 11), V6_12 = new(6, 12), V6_17 = new(6, 17), V6_18 = new(6, 18);

    private const RuleScope A = RuleScope.Arm64, X = RuleScope.X86;

    // arm64 stage-2 faults (domain.md section 3).
    public static readonly Rule Arm64S1ptwWrite = new("arm64.kvm_is_write_fault.s1ptw_write", "kvm_is_write_fault (S1PTW -> write)", Emulate, Until: V6_2, Scope: A, Change: "KVM: arm64: Fix S1PTW handling on RO memslots (v6.2)");
    public static readonly Rule Arm64S1ptwPermission = new("arm64.kvm_is_write_fault.s1ptw_permission", "kvm_is_write_fault (S1PTW -> kvm_vcpu_trap_is_permission_fault)", Emulate, V6_2, Scope: A, Change: "KVM: arm64: Fix S1PTW handling on RO memslots (v6.2)");
    public static readonly Rule Arm64ExecFault = new("arm64.kvm_vcpu_trap_is_exec_fault", "kvm_vcpu_trap_is_exec_fault (IABT and not S1PTW)", Emulate, Scope: A);
    public static readonly Rule Arm64IpaRange = new("arm64.kvm_handle_guest_abort.ipa_range", "kvm_handle_guest_abort (translation fault beyond the IPA limits)", Arm64Mmu, V5_19, Scope: A, Change: "IPA range checks in kvm_handle_guest_abort (patch of 2022-04-27, first in the 5.19 tree)");
    public static readonly Rule Arm64NoMemslot = new("arm64.kvm_handle_guest_abort.no_memslot", "kvm_handle_guest_abort, io_mem_abort", Arm64Mmu + ", arch/arm64/kvm/mmio.c", Scope: A);
    public static readonly Rule Arm64AccessFlag = new("arm64.handle_access_fault", "handle_access_fault", Arm64Mmu, Scope: A);
    public static readonly Rule Arm64GmemAbort = new("arm64.gmem_abort", "gmem_abort", Arm64Mmu, V6_18, Scope: A, Change: "KVM: arm64: Handle guest_memfd-backed guest page faults (v6.18)");
    public static readonly Rule Arm64PermNotWriteExec = new("arm64.kvm_handle_guest_abort.perm_read", "user_mem_abort (Unexpected L2 read permission error)", Arm64Mmu, Until: V6_17, Scope: A, Change: "present in 6.13, gone in 6.17 (6.14 - 6.16 not read)");
    public static readonly Rule Arm64NoVma = new("arm64.user_mem_abort.vma_lookup", "user_mem_abort (vma_lookup)", Arm64Mmu, Scope: A);
    public static readonly Rule Arm64MemslotIsLogging = new("arm64.memslot_is_logging", "memslot_is_logging (dirty_bitmap && !KVM_MEM_READONLY)", Arm64Mmu, Scope: A);
    public static readonly Rule Arm64LoggingForcePte = new("arm64.user_mem_abort.logging_force_pte", "user_mem_abort (logging_active)", Arm64Mmu, Scope: A);
    public static readonly Rule Arm64PkvmPageSize = new("arm64.user_mem_abort.pkvm_page_size", "user_mem_abort (is_protected_kvm_enabled -> force_pte)", Arm64Mmu, Until: new KernelVersion(6, 16), Scope: A, Change: "KVM: arm64: Stage-2 huge mappings for np-guests (v6.16)");
    public static readonly Rule Arm64VmaShift = new("arm64.user_mem_abort.vma_shift", "user_mem_abort (vma_kernel_pagesize; VM_PFNMAP -> force_pte)", Arm64Mmu, Until: V5_14, Scope: A, Change: "KVM: arm64: Try stage2 block mapping for host device MMIO (v5.14)");
    public static readonly Rule Arm64VmaPageShift = new("arm64.get_vma_page_shift", "get_vma_page_shift", Arm64Mmu, V5_14, Scope: A, Change: "KVM: arm64: Try stage2 block mapping for host device MMIO (v5.14)");
    public static readonly Rule Arm64HugeMapping = new("arm64.fault_supports_stage2_huge_mapping", "fault_supports_stage2_huge_mapping", Arm64Mmu, Scope: A);
    public static readonly Rule Arm64Thp = new("arm64.transparent_hugepage_adjust", "transparent_hugepage_adjust", Arm64Mmu, Scope: A);
    public static readonly Rule Arm64Hwpoison = new("arm64.user_mem_abort.hwpoison", "user_mem_abort (kvm_send_hwpoison_signal)", Arm64Mmu, Scope: A);
    public static readonly Rule Arm64PfnValid = new("arm64.user_mem_abort.device_pfn_valid", "kvm_is_device_pfn (!pfn_valid)", Arm64Mmu, Until: V5_14, Scope: A, Change: "arm64: decouple check whether pfn is in linear map from pfn_valid() (v5.14)");
    public static readonly Rule Arm64LinearMap = new("arm64.user_mem_abort.device_linear_map", "kvm_is_device_pfn (!pfn_is_map_memory)", Arm64Mmu, V5_14, V6_17, A, "arm64: decouple check whether pfn is in linear map from pfn_valid() (v5.14); KVM: arm64: Allow cacheable stage 2 mapping using VMA flags (v6.17)");
    public static readonly Rule Arm64ForceNonCacheable = new("arm64.user_mem_abort.force_noncacheable", "user_mem_abort (s2_force_noncacheable, kvm_vma_is_cacheable)", Arm64Mmu, V6_17, Scope: A, Change: "KVM: arm64: Allow cacheable stage 2 mapping using VMA flags (v6.17)");
    public static readonly Rule Arm64CacheablePfnmap = new("arm64.user_mem_abort.cacheable_pfnmap", "user_mem_abort (kvm_supports_cacheable_pfnmap)", Arm64Mmu, V6_17, Scope: A, Change: "KVM: arm64: Allow cacheable stage 2 mapping using VMA flags (v6.17)");
    public static readonly Rule Arm64DirtyLogReadOnly = new("arm64.user_mem_abort.dirty_log_read_only", "user_mem_abort (logging_active && !write_fault, device exempt)", Arm64Mmu, Scope: A);
    public static readonly Rule Arm64ExecNonCacheable = new("arm64.user_mem_abort.exec_noncacheable", "user_mem_abort (exec_fault && device -> -ENOEXEC)", Arm64Mmu, Scope: A);
    public static readonly Rule Arm64MteSharedAtFault = new("arm64.sanitise_mte_tags.pfn", "user_mem_abort (VM_SHARED -> -EFAULT, sanitise_mte_tags)", Arm64Mmu, V5_14M, V6_2, A, "KVM: arm64: Introduce MTE VM feature (v5.14); KVM: arm64: permit all VM_MTE_ALLOWED mappings with MTE enabled (v6.2)");
    public static readonly Rule Arm64Mte = new("arm64.sanitise_mte_tags", "sanitise_mte_tags, kvm_vma_mte_allowed", Arm64Mmu, V6_2, Scope: A, Change: "KVM: arm64: permit all VM_MTE_ALLOWED mappings with MTE enabled (v6.2)");
    public static readonly Rule Arm64HostWritable = new("arm64.user_mem_abort.host_writable", "__kvm_faultin_pfn (writable), hva_to_pfn", Arm64Mmu + ", " + KvmMain, Scope: A);
    public static readonly Rule Arm64Prot = new("arm64.user_mem_abort.prot", "user_mem_abort (KVM_PGTABLE_PROT_*)", Arm64Mmu, Scope: A);
    public static readonly Rule Arm64AllowAnyUncached = new("arm64.user_mem_abort.allow_any_uncached", "user_mem_abort (VM_ALLOW_ANY_UNCACHED -> KVM_PGTABLE_PROT_NORMAL_NC)", Arm64Mmu, V6_9, Scope: A, Change: "KVM: arm64: Set io memory s2 pte as normalnc for vfio pci device (v6.9)");
    public static readonly Rule Arm64RelaxPerms = new("arm64.user_mem_abort.relax_perms", "kvm_pgtable_stage2_relax_perms", Arm64Mmu, Scope: A);
    public static readonly Rule Arm64Map = new("arm64.kvm_pgtable_stage2_map", "kvm_pgtable_stage2_map", Arm64Pgtable, Scope: A);
    public static readonly Rule Arm64SameLeafStands = new("arm64.stage2_map_walker_try_leaf.same_leaf", "stage2_map_walker_try_leaf, stage2_pte_needs_update", Arm64Pgtable, Scope: A);
    public static readonly Rule Arm64BreakBlock = new("arm64.stage2_map_walk_leaf.break_block", "stage2_map_walk_leaf (an existing block is replaced by a table)", Arm64Pgtable, Scope: A);

    // x86 TDP/shadow faults (section 4).
    public static readonly Rule X86PrivateMismatchAfterSlot = new("x86.kvm_faultin_pfn.private_mismatch", "kvm_faultin_pfn (kvm_mmu_prepare_memory_fault_exit, after the memslot checks)", X86Mmu, V6_8, V6_10, X, "KVM: x86/mmu: Move private vs. shared check above slot validity checks (v6.10)");
    public static readonly Rule X86PrivateMismatch = new("x86.kvm_mmu_faultin_pfn.private_mismatch", "kvm_mmu_faultin_pfn (kvm_mmu_prepare_memory_fault_exit)", X86Mmu, V6_10, Scope: X, Change: "KVM: x86/mmu: Move private vs. shared check above slot validity checks (v6.10)");
    public static readonly Rule X86NoMemslot = new("x86.kvm_mmu_faultin_pfn.no_memslot", "kvm_mmu_faultin_pfn, kvm_handle_noslot_fault", X86Mmu, Scope: X);
    public static readonly Rule X86Gmem = new("x86.kvm_mmu_faultin_pfn_gmem", "kvm_mmu_faultin_pfn_gmem (kvm_gmem_get_pfn)", X86Mmu, V6_8, Scope: X, Change: "KVM: x86/mmu: Handle page fault for private memory (v6.8)");
    public static readonly Rule X86ReadOnlyWrite = new("x86.kvm_mmu_faultin_pfn.readonly_write", "__kvm_mmu_faultin_pfn (write to a read-only slot is emulated)", X86Mmu, Scope: X);
    public static readonly Rule X86NoVma = new("x86.hva_to_pfn.no_vma", "hva_to_pfn (KVM_PFN_ERR_FAULT)", KvmMain, Scope: X);
    public static readonly Rule X86Level = new("x86.kvm_mmu_hugepage_adjust", "kvm_mmu_hugepage_adjust, kvm_mmu_max_mapping_level", X86Mmu, Scope: X);
    public static readonly Rule X86MmioPfn = new("x86.kvm_is_mmio_pfn", "kvm_is_mmio_pfn", Spte, Scope: X);
    public static readonly Rule X86VmxMemtype = new("x86.vmx_get_mt_mask", "vmx_get_mt_mask (MMIO -> UC)", "arch/x86/kvm/vmx/vmx.c", Scope: RuleScope.X86Vmx);
    public static readonly Rule X86VmxGuestMtrr = new("x86.vmx_get_mt_mask.guest_mtrr", "vmx_get_mt_mask (kvm_mtrr_get_guest_memory_type, CR0.CD)", "arch/x86/kvm/vmx/vmx.c", Until: V6_11, Scope: RuleScope.X86Vmx, Change: "KVM: x86: Drop support for virtualizing MTRRs, KVM: VMX: Drop support for forcing UC memory when guest CR0.CD=1 (v6.11)");
    public static readonly Rule X86VmxGuestPat = new("x86.vmx_get_mt_mask.guest_pat", "vmx_get_mt_mask (no non-coherent DMA -> WB+IPAT, else WB honouring guest PAT)", "arch/x86/kvm/vmx/vmx.c", V6_11, new KernelVersion(6, 16), RuleScope.X86Vmx, "KVM: x86: Drop support for virtualizing MTRRs (v6.11); the IGNORE_GUEST_PAT quirk (v6.16)");
    public static readonly Rule X86VmxSelfSnoop = new("x86.vmx_get_mt_mask.self_snoop", "vmx_get_mt_mask (static_cpu_has(X86_FEATURE_SELFSNOOP): guest PAT honoured)", "arch/x86/kvm/vmx/vmx.c", V6_11, V6_12, RuleScope.X86Vmx, "KVM: VMX: Always honor guest PAT on CPUs that support self-snoop (v6.11), reverted in v6.12");
    public static readonly Rule X86VmxIgnoreGuestPatQuirk = new("x86.vmx_get_mt_mask.ignore_guest_pat_quirk", "vmx_get_mt_mask (kvm_check_has_quirk KVM_X86_QUIRK_IGNORE_GUEST_PAT)", "arch/x86/kvm/vmx/vmx.c", new KernelVersion(6, 16), Scope: RuleScope.X86Vmx, Change: "KVM: x86: Introduce Intel specific quirk KVM_X86_QUIRK_IGNORE_GUEST_PAT (v6.16)");
    public static readonly Rule X86SvmMemtype = new("x86.svm.npt_memtype", "make_spte (no get_mt_mask on SVM: guest PAT applies)", "arch/x86/kvm/svm/svm.c", Scope: RuleScope.X86Svm);
    public static readonly Rule X86ShadowMemtype = new("x86.shadow.memtype", "make_spte (shadow_memtype_mask = 0)", Spte, Scope: RuleScope.X86Shadow);
    public static readonly Rule X86SpuriousSpte = new("x86.mmu_set_spte.spurious", "mmu_set_spte (RET_PF_SPURIOUS)", X86Mmu, Scope: X);
    public static readonly Rule X86Perms = new("x86.make_spte.perms", "make_spte", Spte, Scope: X);
    public static readonly Rule X86ShadowCleanGpte = new("x86.shadow.protect_clean_gpte", "FNAME(protect_clean_gpte) in FNAME(walk_addr_generic)", "arch/x86/kvm/mmu/paging_tmpl.h", Scope: RuleScope.X86Shadow);

    // Memslots (sections 3, 5, 7).
    public static readonly Rule UnknownIoctl = new("kvm_vm_ioctl.enotty", "kvm_vm_ioctl (an ioctl this kernel lacks returns -ENOTTY)", KvmMain);
    public static readonly Rule SlotFlags = new("kvm_set_memory_region.check_flags", "check_memory_region_flags", KvmMain);
    public static readonly Rule X86SlotReadonlyProtected = new("x86.kvm_arch_has_readonly_mem", "check_memory_region_flags (kvm_arch_has_readonly_mem)", KvmMain + ", arch/x86/include/asm/kvm_host.h", V6_11, Scope: X, Change: "KVM: x86: Disallow read-only memslots for SEV-ES and SEV-SNP (and TDX) (v6.11)");
    public static readonly Rule SlotIds = new("kvm_set_memory_region.slot_id", "kvm_set_memory_region (as_id, id)", KvmMain);
    public static readonly Rule SlotAlignment = new("kvm_set_memory_region.alignment", "kvm_set_memory_region (PAGE_SIZE, overflow, access_ok)", KvmMain);
    public static readonly Rule SlotChangeKind = new("kvm_set_memory_region.change", "kvm_set_memory_region (create, delete, move, flags-only)", KvmMain);
    public static readonly Rule SlotOverlap = new("kvm_set_memory_region.overlap", "kvm_set_memory_region (kvm_check_memslot_overlap)", KvmMain);
    public static readonly Rule GmemBind = new("kvm_gmem_bind", "kvm_gmem_bind", Gmem, V6_8, Change: "KVM: Add KVM_CREATE_GUEST_MEMFD ioctl() for guest-specific backing memory (v6.8)");
    public static readonly Rule Arm64SlotIpa = new("arm64.kvm_arch_prepare_memory_region.ipa_size", "kvm_arch_prepare_memory_region", Arm64Mmu, Scope: A);
    public static readonly Rule Arm64SlotGmemMmap = new("arm64.kvm_arch_prepare_memory_region.gmem_mmap", "kvm_arch_prepare_memory_region (kvm_gmem_supports_mmap)", Arm64Mmu, V6_18, Scope: A, Change: "KVM: arm64: Enable support for guest_memfd backed memory (v6.18)");
    public static readonly Rule Arm64SlotMteShared = new("arm64.kvm_arch_prepare_memory_region.mte_shared", "kvm_arch_prepare_memory_region (VM_SHARED refused with MTE)", Arm64Mmu, V5_14M, V6_2, A, "KVM: arm64: Introduce MTE VM feature (v5.14); KVM: arm64: permit all VM_MTE_ALLOWED mappings with MTE enabled (v6.2)");
    public static readonly Rule Arm64SlotMte = new("arm64.kvm_arch_prepare_memory_region.mte", "kvm_arch_prepare_memory_region (kvm_vma_mte_allowed)", Arm64Mmu, V6_2, Scope: A, Change: "KVM: arm64: permit all VM_MTE_ALLOWED mappings with MTE enabled (v6.2)");
    public static readonly Rule Arm64SlotPfnmapLog = new("arm64.kvm_arch_prepare_memory_region.pfnmap_dirty_log", "kvm_arch_prepare_memory_region", Arm64Mmu, Scope: A);
    public static readonly Rule Arm64SlotCacheablePfnmap = new("arm64.kvm_arch_prepare_memory_region.cacheable_pfnmap", "kvm_arch_prepare_memory_region (kvm_supports_cacheable_pfnmap)", Arm64Mmu, V6_17, Scope: A, Change: "KVM: arm64: Allow cacheable stage 2 mapping using VMA flags (v6.17)");
    public static readonly Rule WhatIfMemslotFlag = new("whatif.memslot_flag.enable_cacheable_pfnmap", "kvm_arch_prepare_memory_region (KVM_MEM_ENABLE_CACHEABLE_PFNMAP, series v4-v6)", Arm64Mmu, Scope: RuleScope.WhatIfMemslotFlag);
    public static readonly Rule WhatIfForceCheck = new("whatif.force_check.force_cacheable_pfnmap", "kvm_arch_prepare_memory_region (KVM_MEM_FORCE_CACHEABLE_PFNMAP, seed 000 sketch)", Arm64Mmu, Scope: RuleScope.WhatIfForceCheck);
    public static readonly Rule X86SlotMaxGfn = new("x86.kvm_arch_prepare_memory_region.max_gfn", "kvm_arch_prepare_memory_region (kvm_mmu_max_gfn)", X86, Scope: X);

    // guest_memfd and memory attributes (section 5).
    public static readonly Rule GmemCreate = new("kvm_gmem_create", "kvm_gmem_create, __kvm_gmem_create (flags must be 0)", Gmem, V6_8, V6_18, Change: "KVM: Add KVM_CREATE_GUEST_MEMFD ioctl() (v6.8); KVM: guest_memfd: Add plumbing to host to map guest_memfd pages (v6.18)");
    public static readonly Rule GmemSupportedFlags = new("kvm_gmem_get_supported_flags", "kvm_gmem_create (kvm_gmem_get_supported_flags: MMAP, INIT_SHARED)", Gmem, V6_18, Change: "KVM: guest_memfd: Add plumbing to host to map guest_memfd pages (v6.18)");
    public static readonly Rule GmemFreshFolio = new("kvm_gmem_get_folio", "kvm_gmem_get_pfn, kvm_gmem_get_folio (filemap_grab_folio)", Gmem, V6_8, Change: "KVM: Add KVM_CREATE_GUEST_MEMFD ioctl() (v6.8)");
    public static readonly Rule Attributes = new("kvm_vm_ioctl_set_mem_attributes", "kvm_vm_ioctl_set_mem_attributes", KvmMain, V6_8, Change: "KVM: Introduce per-page memory attributes (v6.8)");
    public static readonly Rule GmemConvert = new("whatif.kvm_gmem_convert", "kvm_gmem_convert (RFC May 2025, SET_MEMORY_ATTRIBUTES2)", Gmem);
    public static readonly Rule GmemInvalidate = new("kvm_gmem_invalidate", "kvm_gmem_punch_hole, kvm_gmem_release", Gmem, V6_8, Change: "KVM: Add KVM_CREATE_GUEST_MEMFD ioctl() (v6.8)");

    // Invalidations (section 6).
    public static readonly Rule MmuNotifier = new("kvm_mmu_notifier_invalidate_range_start", "kvm_mmu_notifier_invalidate_range_start", KvmMain);
    public static readonly Rule FlushMemslot = new("kvm_arch_flush_shadow_memslot", "kvm_arch_flush_shadow_memslot (the slot's range)", KvmMain + ", " + Arm64Mmu);
    public static readonly Rule X86ZapAllFast = new("x86.kvm_mmu_zap_all_fast", "kvm_arch_flush_shadow_memslot (kvm_mmu_zap_all_fast for every VM)", X86, Until: V6_12, Scope: X, Change: "KVM: x86/mmu: Add a quirk to control memslot zap behavior (v6.12)");
    public static readonly Rule X86SlotZapAllQuirk = new("x86.kvm_memslot_flush_zap_all", "kvm_arch_flush_shadow_memslot (kvm_memslot_flush_zap_all: default VMs with KVM_X86_QUIRK_SLOT_ZAP_ALL)", X86, V6_12, Scope: X, Change: "KVM: x86/mmu: Add a quirk to control memslot zap behavior (v6.12)");
    public static readonly Rule DirtyLogEnable = new("kvm_arch_commit_memory_region.dirty_log", "kvm_mmu_wp_memory_region / kvm_mmu_slot_apply_flags", Arm64Mmu + ", " + X86);
    public static readonly Rule X86Pml = new("x86.kvm_mmu_slot_apply_flags.pml", "kvm_mmu_slot_apply_flags (PML: kvm_mmu_slot_leaf_clear_dirty)", X86, Scope: RuleScope.X86Vmx);
    public static readonly Rule AttributeZap = new("kvm_vm_set_mem_attributes.zap", "kvm_vm_set_mem_attributes (kvm_mmu_unmap_gfn_range)", KvmMain, V6_8, Change: "KVM: Introduce per-page memory attributes (v6.8)");
    public static readonly Rule NoncoherentDmaZap = new("x86.kvm_noncoherent_dma_assignment_start_or_stop", "kvm_noncoherent_dma_assignment_start_or_stop", X86, new KernelVersion(6, 7), Scope: X, Change: "KVM: x86: Zap KVM TDP when noncoherent DMA assignment starts/stops (v6.7)");

    // Observations compared with the model.
    public static readonly Rule ObservedErrno = new("observe.recorded_errno", "the ioctl result the trace recorded", "-");
    public static readonly Rule ObservedMapping = new("observe.stage2_mapping", "the stage-2/EPT entry the trace observed", "-");
    public static readonly Rule ObservedMemoryFault = new("observe.memory_fault_exit", "the KVM_EXIT_MEMORY_FAULT the VMM saw", "-");

    public static IReadOnlyList<Rule> All { get; } = typeof(Rules)
        .GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
        .Where(f => f.FieldType == typeof(Rule))
        .Select(f => (Rule)f.GetValue(null)!)
        .ToList();

    public static Rule? Find(string id) => All.FirstOrDefault(r => r.Id == id);
}
