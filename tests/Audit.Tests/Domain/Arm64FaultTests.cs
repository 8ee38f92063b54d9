using Audit.Domain.Events;
using Audit.Domain.Model;
using static Audit.Tests.Domain.Scenario;

namespace Audit.Tests.Domain;

/// <summary>domain.md section 3: user_mem_abort and kvm_handle_guest_abort, per policy.</summary>
public sealed class Arm64FaultTests
{
    private const ulong BarHva = 0xfffd00000000, BarGpa = 0x10000000, BarPfn = 0x66000000;

    private static Scenario WithBar(string kernel, string? policy = null, bool fwb = true, bool dic = true)
    {
        var s = Arm64(kernel, fwb, dic, policy);
        s.Vma(BarHva, 0x1000000, BarFlags, HostMemType.MT_DEVICE_nGnRnE, Vfio(BarPfn));
        Assert.Equal(0, s.Slot(2, BarGpa, 0x1000000, BarHva).PredictedErrno);
        return s;
    }

    [Theory]
    [InlineData("5.10.0", "arm64/5.10", "Device", "arm64.user_mem_abort.device_pfn_valid")]
    [InlineData("5.15.0", "arm64/5.15", "Device", "arm64.user_mem_abort.device_linear_map")]
    [InlineData("6.9.0", "arm64/6.9", "NormalNC", "arm64.user_mem_abort.device_linear_map")]
    [InlineData("6.17.2", "arm64/6.17", "NormalNC", "arm64.user_mem_abort.force_noncacheable")]
    public void User_mem_abort_maps_a_vfio_pci_bar_by_policy(string kernel, string policy, string memType, string rule)
    {
        var s = WithBar(kernel);
        Assert.Equal(policy, s.State.Policy.Id);
        var r = s.Fault(BarGpa + 0x40, Access.Write);
        Assert.Equal(FaultOutcome.Mapped, r.Outcome);
        Assert.Equal(memType, r.Mapping!.MemType.ToString());
        Assert.Equal(Perms.R | Perms.W, r.Mapping.Perms);
        Assert.Contains(r.Explanation, x => x.Rule == rule);
        Assert.Equal(policy, r.Policy);
    }

    [Fact]
    public void Kvm_vma_is_cacheable_maps_cacheable_pfnmap_as_normal_with_fwb_and_dic_on_6_17()
    {
        var s = Arm64("6.17.2", fwb: true, dic: true);
        var vma = s.Vma(0xfffe00000000, 0x400000000, PfnFlags, HostMemType.MT_NORMAL, Vfio(0x40000000));
        var slot = s.Slot(1, 0x40000000000, 0x400000000, 0xfffe00000000);
        Assert.Equal(0, slot.PredictedErrno);
        var r = s.Fault(0x40000200000, Access.Write);
        Assert.Equal(new Mapping(new(0x40000000000), G1, Stage2MemType.Normal, null, Perms.R | Perms.W | Perms.X), r.Mapping);
        ExplanationAssert.Cites(r.Explanation, Rules.Arm64CacheablePfnmap, s.LastSeq);
        var facts = r.Explanation.SelectMany(x => x.Facts).ToList();
        Assert.Contains(facts, f => f.Name == "vma.flags" && f.Seq == vma);
        Assert.Contains(facts, f => f.Name == "host.caps.fwb" && f.Seq == 1);
        Assert.Contains(facts, f => f.Name == "memslot" && f.Seq == slot.InputSeq);
    }

    [Fact]
    public void Kvm_arch_prepare_memory_region_refuses_cacheable_pfnmap_without_fwb_on_6_17()
    {
        var s = Arm64("6.17.2", fwb: false, dic: true);
        s.Vma(0xfffe00000000, 0x40000000, PfnFlags, HostMemType.MT_NORMAL, Vfio(0x40000000));
        var d = s.Slot(1, 0x40000000000, 0x40000000, 0xfffe00000000);
        Assert.Equal(Errno.EINVAL, d.PredictedErrno);
        Assert.Contains(d.Explanation, x => x.Rule == Rules.Arm64SlotCacheablePfnmap.Id);
        Assert.Empty(s.State.Slots);

        // The refused slot does not exist: the guest access is MMIO.
        Assert.Equal(FaultOutcome.MmioExit, s.Fault(0x40000000000, Access.Read).Outcome);
    }

    [Fact]
    public void User_mem_abort_fails_a_cacheable_mixedmap_fault_without_dic_on_6_17()
    {
        // MIXEDMAP is not checked at memslot creation, so the refusal comes at fault time.
        var s = Arm64("6.17.2", fwb: true, dic: false);
        s.Vma(0xfffe00000000, 0x200000, VmaFlags.VM_SHARED | VmaFlags.VM_MIXEDMAP, HostMemType.MT_NORMAL, Vfio(0x40000000));
        Assert.Equal(0, s.Slot(1, 0x80000000, 0x200000, 0xfffe00000000).PredictedErrno);
        var r = s.Fault(0x80000000, Access.Read);
        Assert.Equal((FaultOutcome.Error, Errno.EFAULT), (r.Outcome, r.Errno));
        Assert.Contains(r.Explanation, x => x.Rule == Rules.Arm64CacheablePfnmap.Id);
    }

    [Theory]
    [InlineData("5.15.0")]
    [InlineData("6.9.0")]
    public void Cacheable_pfnmap_is_device_before_6_17_whatever_the_pgprot(string kernel)
    {
        var s = Arm64(kernel);
        s.Vma(0xfffe00000000, 0x400000000, PfnFlags, HostMemType.MT_NORMAL, Vfio(0x40000000));
        s.Slot(1, 0x40000000000, 0x400000000, 0xfffe00000000);
        Assert.Equal(Stage2MemType.Device, s.Fault(0x40000200000, Access.Write).Mapping!.MemType);
    }

    [Fact]
    public void User_mem_abort_injects_an_instruction_abort_for_exec_on_forced_noncacheable_memory()
    {
        var s = WithBar("6.17.2");
        var r = s.Fault(BarGpa + 0x1000, Access.Exec);
        Assert.Equal((FaultOutcome.InjectIabt, Errno.ENOEXEC, (Mapping?)null), (r.Outcome, r.Errno, r.Mapping));
        Assert.Contains(r.Explanation, x => x.Rule == Rules.Arm64ExecNonCacheable.Id);
        Assert.Null(s.EntryAt(BarGpa + 0x1000));
    }

    [Theory]
    [InlineData(0x0UL, 0x40000000UL, 0x40000000UL)] // hva, pa both 1G aligned -> 1G
    [InlineData(0x0UL, 0x40200000UL, 0x200000UL)] // congruent only at 2M -> 2M
    [InlineData(0x1000UL, 0x40000000UL, 0x1000UL)] // pa off by a page -> 4K
    public void Get_vma_page_shift_sizes_pfnmap_blocks_by_alignment(ulong pfnDelta, ulong pfnBytes, ulong expected)
    {
        var s = Arm64("6.17.2");
        var pfn = (pfnBytes + pfnDelta) >> 12;
        s.Vma(0xfffe00000000, 0x80000000, PfnFlags, HostMemType.MT_NORMAL, Vfio(pfn));
        s.Slot(1, 0x40000000000, 0x80000000, 0xfffe00000000);
        var r = s.Fault(0x40000000000 + 0x123000, Access.Write);
        Assert.Equal(expected, r.Mapping!.Size);
        Assert.Equal(0x40000000000 + (0x123000UL & ~(expected - 1)), r.Mapping.Gpa.Value);
        Assert.Contains(r.Explanation, x => x.Rule == Rules.Arm64VmaPageShift.Id);
    }

    [Fact]
    public void Get_vma_page_shift_uses_vm_pgoff_when_the_trace_has_it()
    {
        // vfio-pci since 6.10 keeps a region offset in vm_pgoff: pa is then not the pfn.
        var s = Arm64("6.17.2");
        s.Vma(0xfffe00000000, 0x80000000, PfnFlags, HostMemType.MT_NORMAL, Vfio(0x40000, pgoff: 0x1));
        s.Slot(1, 0x40000000000, 0x80000000, 0xfffe00000000);
        Assert.Equal(K4, s.Fault(0x40000000000, Access.Write).Mapping!.Size);
    }

    [Fact]
    public void Pfnmap_is_always_4k_before_5_14()
    {
        var s = Arm64("5.10.0");
        s.Vma(0xfffe00000000, 0x80000000, PfnFlags, HostMemType.MT_NORMAL, Vfio(0x40000));
        s.Slot(1, 0x40000000000, 0x80000000, 0xfffe00000000);
        Assert.Equal(K4, s.Fault(0x40000000000, Access.Write).Mapping!.Size);
    }

    [Fact]
    public void Fault_supports_stage2_huge_mapping_drops_1g_to_2m_when_the_memslot_cannot_hold_it()
    {
        var s = Arm64("6.17.2");
        s.Vma(0xfffe00000000, 0x80000000, PfnFlags, HostMemType.MT_NORMAL, Vfio(0x40000000000 >> 12));
        // gpa congruent with hva only at 2M: 0x40000200000 vs 0xfffe00000000.
        s.Slot(1, 0x40000200000, 0x40000000, 0xfffe00000000);
        var r = s.Fault(0x40000400000, Access.Write);
        Assert.Equal(M2, r.Mapping!.Size);
        Assert.Contains(r.Explanation, x => x.Rule == Rules.Arm64HugeMapping.Id && x.Text.Contains("1G", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(0x200000UL, 0x200000UL)]
    [InlineData(0x40000000UL, 0x40000000UL)]
    [InlineData(0x2000000UL, 0x200000UL)] // CONT_PMD 32M -> 2M
    [InlineData(0x10000UL, 0x1000UL)] // CONT_PTE 64K -> 4K
    public void Get_vma_page_shift_follows_the_hugetlb_page_size(ulong hostPage, ulong expected)
    {
        var s = Arm64("6.17.2");
        s.Vma(0xffff00000000, 0x80000000, VmaFlags.VM_SHARED | VmaFlags.VM_HUGETLB, HostMemType.MT_NORMAL, Hugetlb(hostPage));
        s.Slot(0, 0x40000000, 0x80000000, 0xffff00000000);
        Assert.Equal(expected, s.Fault(0x40080000, Access.Write).Mapping!.Size);
    }

    [Fact]
    public void Transparent_hugepage_adjust_promotes_a_thp_backed_4k_fault_to_2m()
    {
        var s = Arm64("6.17.2");
        s.Vma(0xffff00000000, 0x40000000, VmaFlags.None, HostMemType.MT_NORMAL, Anon(thp: true));
        s.Slot(0, 0x40000000, 0x40000000, 0xffff00000000);
        var r = s.Fault(0x40123000, Access.Write);
        Assert.Equal((0x40000000UL, M2), (r.Mapping!.Gpa.Value, r.Mapping.Size));
        Assert.Contains(r.Explanation, x => x.Rule == Rules.Arm64Thp.Id);

        // Without THP the same fault stays 4K.
        var plain = Arm64("6.17.2");
        plain.Vma(0xffff00000000, 0x40000000, VmaFlags.None, HostMemType.MT_NORMAL, Anon());
        plain.Slot(0, 0x40000000, 0x40000000, 0xffff00000000);
        Assert.Equal(K4, plain.Fault(0x40123000, Access.Write).Mapping!.Size);
    }

    [Fact]
    public void Dirty_logging_forces_4k_and_maps_read_faults_read_only()
    {
        var s = Arm64("6.17.2", dic: false);
        s.Vma(0xffff00000000, 0x40000000, VmaFlags.VM_SHARED | VmaFlags.VM_HUGETLB, HostMemType.MT_NORMAL, Hugetlb(M2));
        s.Slot(0, 0x40000000, 0x40000000, 0xffff00000000, MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES);
        var read = s.Fault(0x40400000, Access.Read);
        Assert.Equal((K4, Perms.R), (read.Mapping!.Size, read.Mapping.Perms));
        Assert.Contains(read.Explanation, x => x.Rule == Rules.Arm64LoggingForcePte.Id);
        Assert.Contains(read.Explanation, x => x.Rule == Rules.Arm64DirtyLogReadOnly.Id);

        var write = s.Fault(0x40400000, Access.Write, FaultKind.Permission, granule: K4);
        Assert.Equal(FaultOutcome.Relaxed, write.Outcome);
        Assert.Equal(Perms.R | Perms.W, write.Mapping!.Perms);
    }

    [Fact]
    public void Dirty_logging_keeps_device_mixedmap_writable_on_read_faults_before_and_from_6_17()
    {
        var s = Arm64("6.17.2");
        s.Vma(0xfffe00000000, 0x200000, VmaFlags.VM_SHARED | VmaFlags.VM_MIXEDMAP, HostMemType.MT_DEVICE_nGnRE, Vfio(0x66000));
        s.Slot(1, 0x80000000, 0x200000, 0xfffe00000000, MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES);
        Assert.Equal(Perms.R | Perms.W, s.Fault(0x80000000, Access.Read).Mapping!.Perms);

        // 5.10 - 6.16: `if (device) ... else if (logging && !write_fault) writable = false` (kvm_is_device_pfn).
        var old = Arm64("6.9.0");
        old.Vma(0xfffe00000000, 0x200000, VmaFlags.VM_SHARED | VmaFlags.VM_MIXEDMAP, HostMemType.MT_DEVICE_nGnRE, Vfio(0x66000));
        old.Slot(1, 0x80000000, 0x200000, 0xfffe00000000, MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES);
        Assert.Equal(Perms.R | Perms.W, old.Fault(0x80000000, Access.Read).Mapping!.Perms);
    }

    [Fact]
    public void Kvm_handle_guest_abort_sends_a_write_to_a_read_only_memslot_to_mmio()
    {
        var s = Arm64("6.17.2");
        s.Vma(0xffff00000000, 0x200000, VmaFlags.None, HostMemType.MT_NORMAL, Anon(), "r--");
        s.Slot(0, 0x40000000, 0x200000, 0xffff00000000, MemslotFlags.KVM_MEM_READONLY);
        Assert.Equal(FaultOutcome.MmioExit, s.Fault(0x40000000, Access.Write).Outcome);
        var exec = s.Fault(0x40002000, Access.Exec);
        Assert.Equal(FaultOutcome.Mapped, exec.Outcome);
        Assert.Equal(Perms.R | Perms.X, exec.Mapping!.Perms);
        var read = s.Fault(0x40001000, Access.Read);
        Assert.Equal(FaultOutcome.Mapped, read.Outcome);
        Assert.Equal(Perms.None, read.Mapping!.Perms & Perms.W);
    }

    [Theory]
    [InlineData(Access.Read, false, false, FaultOutcome.MmioExit)]
    [InlineData(Access.Exec, false, false, FaultOutcome.InjectIabt)]
    [InlineData(Access.Read, true, false, FaultOutcome.InjectDabt)]
    [InlineData(Access.Write, false, true, FaultOutcome.Skipped)]
    public void Kvm_handle_guest_abort_outside_any_memslot(Access access, bool s1ptw, bool cm, FaultOutcome expected)
    {
        var s = Arm64("6.17.2");
        var r = s.Fault(0x9000000, access, s1ptw: s1ptw, cm: cm);
        Assert.Equal(expected, r.Outcome);
        Assert.Contains(r.Explanation, x => x.Rule == Rules.Arm64NoMemslot.Id);
    }

    [Fact]
    public void Kvm_handle_guest_abort_injects_an_abort_beyond_the_ipa_space()
    {
        var s = Arm64("6.17.2", ipaBits: 40);
        Assert.Equal(FaultOutcome.InjectDabt, s.Fault(1UL << 41, Access.Read).Outcome);
    }

    [Fact]
    public void Handle_access_fault_marks_young_without_changing_attributes()
    {
        var s = WithBar("6.17.2");
        var mapped = s.Fault(BarGpa, Access.Write).Mapping;
        var young = s.Fault(BarGpa, Access.Read, FaultKind.AccessFlag);
        Assert.Equal(FaultOutcome.Young, young.Outcome);
        Assert.Equal(mapped, young.Mapping);
    }

    [Fact]
    public void A_read_permission_fault_is_an_error_until_6_16_and_is_handled_from_6_17()
    {
        // "Unexpected L2 read permission error" in user_mem_abort: present in 6.13.7, gone in 6.17.0.
        var s = WithBar("6.16.0");
        var r = s.Fault(BarGpa, Access.Read, FaultKind.Permission);
        Assert.Equal((FaultOutcome.Error, Errno.EFAULT), (r.Outcome, r.Errno));
        Assert.Contains(r.Explanation, x => x.Rule == Rules.Arm64PermNotWriteExec.Id);

        var now = WithBar("6.17.0").Fault(BarGpa, Access.Read, FaultKind.Permission);
        Assert.NotEqual(FaultOutcome.Error, now.Outcome);
        Assert.DoesNotContain(now.Explanation, x => x.Rule == Rules.Arm64PermNotWriteExec.Id);
    }

    [Fact]
    public void Vma_lookup_failure_is_efault()
    {
        var s = Arm64("6.17.2");
        s.Vma(0xffff00000000, 0x200000, VmaFlags.None, HostMemType.MT_NORMAL, Anon());
        s.Slot(0, 0x40000000, 0x200000, 0xffff00000000);
        s.Do(new VmaUnmapped(Audit.Domain.Addresses.HvaRange.FromSize(new(0xffff00000000), 0x200000)));
        var r = s.Fault(0x40000000, Access.Write);
        Assert.Equal((FaultOutcome.Error, Errno.EFAULT), (r.Outcome, r.Errno));
        Assert.Contains(r.Explanation, x => x.Rule == Rules.Arm64NoVma.Id);
    }

    [Fact]
    public void A_guest_write_to_a_map_private_pfnmap_fails_with_efault()
    {
        var s = Arm64("6.17.2");
        s.Vma(0xfffd00000000, 0x200000, VmaFlags.VM_IO | VmaFlags.VM_PFNMAP | VmaFlags.VM_ALLOW_ANY_UNCACHED, HostMemType.MT_DEVICE_nGnRnE, Vfio(0x66000));
        s.Slot(2, BarGpa, 0x200000, 0xfffd00000000);
        Assert.Equal(Errno.EFAULT, s.Fault(BarGpa, Access.Write).Errno);
        Assert.Equal(Perms.R, s.Fault(BarGpa, Access.Read).Mapping!.Perms);
    }

    [Fact]
    public void A_hwpoisoned_page_sends_sigbus()
    {
        var s = Arm64("6.17.2");
        s.Vma(0xffff00000000, 0x200000, VmaFlags.None, HostMemType.MT_NORMAL, Anon());
        s.Slot(0, 0x40000000, 0x200000, 0xffff00000000);
        s.Do(new VmaAdvised(Audit.Domain.Addresses.HvaRange.FromSize(new(0xffff00001000), 0x1000), "MADV_HWPOISON"));
        Assert.Equal(FaultOutcome.Sigbus, s.Fault(0x40001000, Access.Read).Outcome);
        Assert.Equal(FaultOutcome.Mapped, s.Fault(0x40002000, Access.Read).Outcome);
    }

    [Theory]
    [InlineData(true, "r-x")]
    [InlineData(false, "r--")]
    public void Cache_dic_makes_normal_mappings_executable_up_front(bool dic, string perms)
    {
        var s = Arm64("6.17.2", dic: dic);
        s.Vma(0xffff00000000, 0x200000, VmaFlags.None, HostMemType.MT_NORMAL, Anon());
        s.Slot(0, 0x40000000, 0x200000, 0xffff00000000);
        Assert.Equal(ParsePerms(perms), s.Fault(0x40000000, Access.Read).Mapping!.Perms);
    }

    [Fact]
    public void Before_6_2_sanitise_mte_tags_maps_a_private_vma_without_vm_mte_allowed()
    {
        // 5.14 - 6.1 (sndrzt/linux-5.15 user_mem_abort): only VM_SHARED or a pfn without an online page is refused.
        var s = Arm64("6.1.0");
        s.Do(new CapabilityEnabled("KVM_CAP_ARM_MTE", Audit.Domain.ValueList<CapArg>.Empty));
        s.Vma(0xffff00000000, 0x200000, VmaFlags.None, HostMemType.MT_NORMAL, new Backing(BackingKind.File, "/img"));
        Assert.Equal(0, s.Slot(0, 0x40000000, 0x200000, 0xffff00000000).PredictedErrno);
        var r = s.Fault(0x40000000, Access.Read);
        Assert.Equal(FaultOutcome.Mapped, r.Outcome);
        Assert.Contains(r.Explanation, x => x.Rule == Rules.Arm64MteSharedAtFault.Id);
    }

    [Fact]
    public void From_6_2_sanitise_mte_tags_fails_a_fault_on_a_vma_without_vm_mte_allowed()
    {
        // 6.2 "permit all VM_MTE_ALLOWED mappings with MTE enabled": user_mem_abort returns -EFAULT without it.
        var s = Arm64("6.2.0");
        s.Do(new CapabilityEnabled("KVM_CAP_ARM_MTE", Audit.Domain.ValueList<CapArg>.Empty));
        s.Vma(0xffff00000000, 0x200000, VmaFlags.VM_MTE_ALLOWED, HostMemType.MT_NORMAL, new Backing(BackingKind.Anon));
        Assert.Equal(0, s.Slot(0, 0x40000000, 0x200000, 0xffff00000000).PredictedErrno);
        s.Do(new VmaUnmapped(Audit.Domain.Addresses.HvaRange.FromSize(new(0xffff00000000), 0x200000)));
        s.Vma(0xffff00000000, 0x200000, VmaFlags.None, HostMemType.MT_NORMAL, new Backing(BackingKind.File, "/img"));
        var r = s.Fault(0x40000000, Access.Read);
        Assert.Equal((FaultOutcome.Error, Errno.EFAULT), (r.Outcome, r.Errno));
        Assert.Contains(r.Explanation, x => x.Rule == Rules.Arm64Mte.Id);
    }

    [Fact]
    public void Gmem_abort_maps_guest_memfd_memory_normal_4k_on_6_18()
    {
        var s = Arm64("6.18.0");
        s.Do(new GuestMemfdCreated(7, 0x40000000, GuestMemfdFlags.MMAP, null));
        var d = s.Slot(3, 0x80000000, 0x200000, 0xfffc00000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 7, 0);
        Assert.Equal(0, d.PredictedErrno);
        var r = s.Fault(0x80001000, Access.Read);
        Assert.Equal(new Mapping(new(0x80001000), K4, Stage2MemType.Normal, null, Perms.R | Perms.W | Perms.X), r.Mapping);
        Assert.Contains(r.Explanation, x => x.Rule == Rules.Arm64GmemAbort.Id);
    }

    [Fact]
    public void Arm64_refuses_a_guest_memfd_without_mmap_on_6_18_and_the_flag_before()
    {
        var s = Arm64("6.18.0");
        s.Do(new GuestMemfdCreated(7, 0x40000000, GuestMemfdFlags.None, null));
        var d = s.Slot(3, 0x80000000, 0x200000, 0xfffc00000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 7, 0);
        Assert.Equal(Errno.EINVAL, d.PredictedErrno);
        Assert.Contains(d.Explanation, x => x.Rule == Rules.Arm64SlotGmemMmap.Id);

        var old = Arm64("6.17.2");
        var flag = old.Slot(3, 0x80000000, 0x200000, 0xfffc00000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 7, 0);
        Assert.Equal(Errno.EINVAL, flag.PredictedErrno);
        Assert.Contains(flag.Explanation, x => x.Rule == Rules.SlotFlags.Id);
    }
}

public sealed class ExplanationTextTests
{
    [Fact]
    public void A_pfnmap_block_is_explained_as_pfnmap_even_after_a_hugetlb_block_of_the_same_size()
    {
        var s = Scenario.Arm64("6.17.2");
        s.Vma(0xffff00000000, 0x40000000, VmaFlags.VM_SHARED | VmaFlags.VM_HUGETLB, HostMemType.MT_NORMAL, Scenario.Hugetlb(Scenario.M2));
        s.Slot(0, 0x40000000, 0x40000000, 0xffff00000000);
        s.Vma(0xfffd00000000, 0x1000000, Scenario.BarFlags, HostMemType.MT_DEVICE_nGnRnE, Scenario.Vfio(0x66000000));
        s.Slot(2, 0x10000000, 0x1000000, 0xfffd00000000);
        var huge = s.Fault(0x40000000, Access.Write).Explanation.First(x => x.Rule == Rules.Arm64VmaPageShift.Id);
        var pfn = s.Fault(0x10000000, Access.Write).Explanation.First(x => x.Rule == Rules.Arm64VmaPageShift.Id);
        Assert.StartsWith("hugetlb VMA", huge.Text, StringComparison.Ordinal);
        Assert.StartsWith("VM_PFNMAP with hva and pa congruent modulo", pfn.Text, StringComparison.Ordinal);
    }
}

public sealed class VfioRegionAttributeTests
{
    [Theory]
    [InlineData("cacheable", "Normal")]
    [InlineData("wc", "NormalNC")]
    [InlineData(null, "NormalNC")]
    public void A_later_mmap_of_a_region_range_gets_the_requested_memory_type(string? attr, string memType)
    {
        // Seed 004: the request changes no mapping; the next mmap of that region range has the matching pgprot,
        // and user_mem_abort (6.17, kvm_vma_is_cacheable) decides from it.
        var s = Scenario.Arm64("6.17.2", fwb: true, dic: true);
        if (attr is not null)
        {
            s.Do(new VfioRegionAttributesSet("0000:01:00.0", 0, 0x0, 0x100000, attr));
        }

        s.Vma(0xfffd00000000, 0x1000000, Scenario.BarFlags, HostMemType.MT_DEVICE_nGnRnE, Scenario.Vfio(0x2000000, pgoff: 0));
        s.Slot(2, 0x10000000, 0x1000000, 0xfffd00000000);
        Assert.Equal(memType, s.Fault(0x10000040, Access.Write).Mapping!.MemType.ToString());

        // Past the requested range the mmap's own type holds.
        Assert.Equal("NormalNC", s.Fault(0x10200000, Access.Write).Mapping!.MemType.ToString());
    }
}
