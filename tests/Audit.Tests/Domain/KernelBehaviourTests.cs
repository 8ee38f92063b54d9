using Audit.Domain;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Model;
using static Audit.Tests.Domain.Scenario;

namespace Audit.Tests.Domain;

/// <summary>The behaviours the 2026-12 kernel audit corrected, each named after what the kernel does and citing the function.</summary>
public sealed class KernelBehaviourTests
{
    private const ulong Ram = 0xffff00000000, Gpa = 0x40000000;

    private static Scenario ThpRam(string kernel = "6.17.2")
    {
        var s = Arm64(kernel);
        s.Vma(Ram, 0x800000, VmaFlags.None, HostMemType.MT_NORMAL, Anon(thp: true));
        s.Slot(0, Gpa, 0x800000, Ram);
        return s;
    }

    [Fact]
    public void Transparent_hugepage_adjust_maps_4k_after_a_partial_munmap_split_the_host_huge_page()
    {
        // get_user_mapping_size reads the host page table: split_huge_pmd left 4K ptes in the rest of the 2M range.
        var s = ThpRam();
        Assert.Equal(M2, s.Fault(Gpa + 0x200000, Access.Write).Mapping!.Size);
        s.Do(new VmaUnmapped(HvaRange.FromSize(new(Ram + 0x200000), 0x1000)));
        var after = s.Fault(Gpa + 0x201000, Access.Write);
        Assert.Equal(K4, after.Mapping!.Size);
        Assert.Contains(after.Explanation, x => x.Rule == Rules.Arm64Thp.Id && x.Facts.Any(f => f.Name == "host.thp_split"));

        // The neighbouring 2M range was not touched: still a block.
        Assert.Equal(M2, s.Fault(Gpa + 0x400000, Access.Write).Mapping!.Size);
    }

    [Theory]
    [InlineData("mprotect")]
    [InlineData("MADV_DONTNEED")]
    public void A_partial_mprotect_or_madvise_also_splits_the_host_huge_page(string how)
    {
        var s = ThpRam();
        InputEvent e = how == "mprotect"
            ? new VmaProtectionChanged(HvaRange.FromSize(new(Ram + 0x200000), 0x1000), Perms.R, null)
            : new VmaAdvised(HvaRange.FromSize(new(Ram + 0x200000), 0x1000), how);
        s.Do(e);
        Assert.Equal(K4, s.Fault(Gpa + 0x300000, Access.Read).Mapping!.Size);
    }

    [Fact]
    public void A_read_only_memslot_with_log_dirty_is_never_logging_and_keeps_its_blocks()
    {
        // memslot_is_logging: dirty_bitmap && !KVM_MEM_READONLY (arch/arm64/kvm/mmu.c, 5.10.13 - 6.18.2).
        var s = Arm64("6.17.2");
        s.Vma(Ram, 0x400000, VmaFlags.VM_SHARED, HostMemType.MT_NORMAL, Hugetlb(M2));
        s.Slot(0, Gpa, 0x400000, Ram, MemslotFlags.KVM_MEM_READONLY | MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES);
        var r = s.Fault(Gpa, Access.Read);
        Assert.Equal(M2, r.Mapping!.Size);
        Assert.Contains(r.Explanation, x => x.Rule == Rules.Arm64MemslotIsLogging.Id);
        Assert.DoesNotContain(r.Explanation, x => x.Rule == Rules.Arm64LoggingForcePte.Id);
    }

    [Theory]
    [InlineData(BackingKind.Shmem, true, true)]
    [InlineData(BackingKind.Hugetlb, true, true)]
    [InlineData(BackingKind.File, true, false)]
    [InlineData(BackingKind.Anon, false, false)]
    public void A_read_fault_gets_w_when_the_host_pte_is_already_writable(BackingKind kind, bool shared, bool w)
    {
        // hva_to_pfn asks for a writable page first ("map read fault as writable if possible").
        var s = Arm64("6.17.2");
        var backing = kind == BackingKind.Hugetlb ? Hugetlb(M2) : new Backing(kind, LinearMap: true, StructPage: true);
        s.Vma(Ram, 0x400000, shared ? VmaFlags.VM_SHARED : VmaFlags.None, HostMemType.MT_NORMAL, backing);
        s.Slot(0, Gpa, 0x400000, Ram);
        Assert.Equal(w, (s.Fault(Gpa, Access.Read).Mapping!.Perms & Perms.W) != 0);
    }

    [Fact]
    public void A_private_page_written_before_is_mapped_writable_on_a_later_read()
    {
        var s = Arm64("6.17.2");
        s.Vma(Ram, 0x400000, VmaFlags.None, HostMemType.MT_NORMAL, Anon());
        s.Slot(0, Gpa, 0x400000, Ram);
        s.Fault(Gpa, Access.Write);
        s.Do(new MmuNotifierInvalidated(new(Ram), new(Ram + 0x1000)));
        Assert.Equal(Perms.R | Perms.W, s.Fault(Gpa, Access.Read).Mapping!.Perms & (Perms.R | Perms.W));

        s.Do(new VmaAdvised(HvaRange.FromSize(new(Ram + 0x2000), 0x1000), "MADV_POPULATE_WRITE"));
        Assert.Equal(Perms.W, s.Fault(Gpa + 0x2000, Access.Read).Mapping!.Perms & Perms.W);
    }

    [Fact]
    public void A_write_fault_on_a_block_write_protected_by_logging_breaks_it_and_maps_only_its_page()
    {
        // stage2_map_walk_leaf: the block becomes a table holding the new page; the rest is faulted back lazily.
        var s = Arm64("6.17.2");
        s.Vma(Ram, 0x400000, VmaFlags.VM_SHARED, HostMemType.MT_NORMAL, Hugetlb(M2));
        s.Slot(0, Gpa, 0x400000, Ram);
        Assert.Equal(M2, s.Fault(Gpa, Access.Write).Mapping!.Size);
        s.Slot(0, Gpa, 0x400000, Ram, MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES);
        Assert.Equal(Perms.None, s.EntryAt(Gpa + 0x5000)!.Value.Perms & Perms.W);

        var derived = s.Do(new GuestFaulted(0, new(Gpa + 0x5000), Access.Write, FaultKind.Permission, Granule: M2));
        var f = derived.OfType<FaultResolved>().Single();
        Assert.Equal((FaultOutcome.Mapped, K4), (f.Outcome, f.Mapping!.Size));
        Assert.Contains(f.Explanation, x => x.Rule == Rules.Arm64BreakBlock.Id);
        var rest = derived.OfType<Stage2Unmapped>().Single();
        Assert.Equal(Rules.Arm64BreakBlock.Id, rest.Rule);
        Assert.Equal(new List<GpaRange> { new(new(Gpa), new(Gpa + 0x5000)), new(new(Gpa + 0x6000), new(Gpa + M2)) }, rest.Ranges.ToList());
        Assert.Null(s.EntryAt(Gpa));
        Assert.Equal(K4, s.EntryAt(Gpa + 0x5000)!.Value.Granule);
    }

    [Fact]
    public void An_s1ptw_fault_of_an_instruction_fetch_outside_memslots_injects_an_instruction_abort()
    {
        // kvm_handle_guest_abort tests the instruction abort before the S1PTW bit.
        var s = Arm64("6.17.2");
        Assert.Equal(FaultOutcome.InjectIabt, s.Fault(0x90000000, Access.Exec, s1ptw: true).Outcome);
        Assert.Equal(FaultOutcome.InjectDabt, s.Fault(0x90000000, Access.Read, s1ptw: true).Outcome);
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(false, false)]
    public void With_pml_enabling_dirty_logging_leaves_4k_entries_writable(bool pml, bool writable)
    {
        // kvm_mmu_slot_apply_flags: with PML the leaves' dirty bits are cleared instead of write-protecting them.
        var host = new HostDescribed(Arch.X86_64, "6.16.1", X86Vendor.Intel, 4096, new HostCaps(SelfSnoop: true, Tdp: true, Pml: pml));
        var s = new Scenario(Policies.DefaultFor(host));
        s.Do(host);
        s.Do(new VmCreated(VmType.Default, null));
        s.Vma(0x7f0000000000, 0x400000, VmaFlags.None, HostMemType.WB, Anon());
        s.Slot(0, 0x0, 0x400000, 0x7f0000000000);
        s.Fault(0x1000, Access.Write);
        var derived = s.Do(new MemslotSet(0, 0, new(0x0), 0x400000, new(0x7f0000000000), MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES, null, null, null));
        Assert.Equal(pml ? Rules.X86Pml.Id : Rules.DirtyLogEnable.Id, derived.OfType<Stage2WriteProtected>().Single().Rule);
        Assert.Equal(writable, (s.EntryAt(0x1000)!.Value.Perms & Perms.W) != 0);
    }

    [Theory]
    [InlineData("6.11.0", VmType.SwProtected, true)]
    [InlineData("6.12.0", VmType.SwProtected, false)]
    [InlineData("6.12.0", VmType.Default, true)]
    public void A_memslot_delete_zaps_everything_only_on_default_vms_from_6_12(string kernel, VmType vm, bool everything)
    {
        // kvm_arch_flush_shadow_memslot: kvm_memslot_flush_zap_all needs KVM_X86_DEFAULT_VM and SLOT_ZAP_ALL (6.12).
        var s = X86(kernel, vm: vm);
        s.Vma(0x7f0000000000, 0x800000, VmaFlags.VM_SHARED, HostMemType.WB, new Backing(BackingKind.Shmem));
        s.Slot(0, 0x0, 0x400000, 0x7f0000000000);
        s.Slot(1, 0x400000, 0x400000, 0x7f0000400000);
        s.Fault(0x1000, Access.Write);
        s.Fault(0x401000, Access.Write);
        s.Slot(0, 0x0, 0, 0x7f0000000000);
        Assert.Equal(everything, s.EntryAt(0x401000) is null);
    }

    [Fact]
    public void Disable_quirks2_with_an_unsupported_quirk_disables_nothing()
    {
        // IGNORE_GUEST_PAT needs a self-snoop CPU: the whole call fails, SLOT_ZAP_ALL stays on.
        var s = X86("6.16.1", selfSnoop: false);
        s.Do(new CapabilityEnabled("KVM_CAP_DISABLE_QUIRKS2", ValueList.Of(new CapArg("quirks", ValueList.Of("SLOT_ZAP_ALL", "IGNORE_GUEST_PAT")))));
        Assert.Empty(s.State.DisabledQuirks);
    }

    [Theory]
    [InlineData(VmType.Snp, GuestMemfdFlags.MMAP, 0)]
    [InlineData(VmType.Snp, GuestMemfdFlags.INIT_SHARED, Errno.EINVAL)]
    [InlineData(VmType.Default, GuestMemfdFlags.MMAP | GuestMemfdFlags.INIT_SHARED, 0)]
    public void Guest_memfd_flags_of_6_18_offer_mmap_to_every_vm_and_init_shared_without_private_memory(VmType vm, GuestMemfdFlags flags, int errno)
    {
        // kvm_gmem_get_supported_flags (include/linux/kvm_host.h, 6.18).
        var s = X86("6.18.0", vm: vm);
        var d = s.Do(new GuestMemfdCreated(5, 0x200000, flags, null)).OfType<IoctlDecided>().Single();
        Assert.Equal(errno, d.PredictedErrno);
    }
}
