using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Model;
using static Audit.Tests.Domain.Scenario;

namespace Audit.Tests.Domain;

/// <summary>domain.md section 6: what removes or write-protects stage-2 entries.</summary>
public sealed class InvalidationTests
{
    private static readonly HvaRange Ram = HvaRange.FromSize(new(0xffff00000000), 0x40000000);

    private static Scenario Hugetlb(Scenario s)
    {
        s.Vma(Ram.Start.Value, Ram.Size, VmaFlags.VM_SHARED | VmaFlags.VM_HUGETLB, HostMemType.MT_NORMAL, Scenario.Hugetlb(M2));
        s.Slot(0, 0x40000000, 0x40000000, Ram.Start.Value);
        return s;
    }

    [Fact]
    public void Kvm_mmu_notifier_invalidate_range_start_removes_a_whole_2m_block_for_a_4k_munmap()
    {
        var s = Hugetlb(Arm64());
        Assert.Equal(M2, s.Fault(0x40201000, Access.Write).Mapping!.Size);
        var derived = s.Do(new VmaUnmapped(HvaRange.FromSize(new(0xffff00203000), 0x1000)));
        Assert.Equal([new GpaRange(new(0x40200000), new(0x40400000))], s.Unmapped(derived));
        Assert.Null(s.EntryAt(0x40201000));
        Assert.Contains(derived, d => d is Stage2Unmapped u && u.CauseSeq == s.LastSeq - 1);
    }

    [Fact]
    public void Notifier_ranges_go_through_the_memslot_table_of_that_moment()
    {
        var s = Hugetlb(Arm64());
        s.Fault(0x40000000, Access.Write);
        s.Slot(0, 0x80000000, 0x40000000, Ram.Start.Value); // move: unmaps the old range
        Assert.Null(s.EntryAt(0x40000000));
        s.Fault(0x80000000, Access.Write);
        var derived = s.Do(new MmuNotifierInvalidated(new(0xffff00000000), new(0xffff00001000)));
        Assert.Equal([new GpaRange(new(0x80000000), new(0x80200000))], s.Unmapped(derived));
    }

    [Fact]
    public void Mprotect_unmaps_and_the_next_fault_reads_the_new_protection()
    {
        var s = Arm64();
        s.Vma(0xfffd00000000, 0x200000, BarFlags, HostMemType.MT_DEVICE_nGnRnE, Vfio(0x66000));
        s.Slot(2, 0x10000000, 0x200000, 0xfffd00000000);
        Assert.Equal(Stage2MemType.NormalNC, s.Fault(0x10000000, Access.Write).Mapping!.MemType);
        var derived = s.Do(new VmaProtectionChanged(HvaRange.FromSize(new(0xfffd00000000), 0x200000), Perms.R | Perms.W, HostMemType.MT_NORMAL));
        Assert.NotEmpty(s.Unmapped(derived));
        Assert.Equal(Stage2MemType.Normal, s.Fault(0x10000000, Access.Write).Mapping!.MemType);
    }

    [Theory]
    [InlineData("MADV_DONTNEED", true)]
    [InlineData("MADV_REMOVE", true)]
    [InlineData("MADV_WILLNEED", false)]
    public void Madvise_that_drops_pages_unmaps(string advice, bool unmaps)
    {
        var s = Hugetlb(Arm64());
        s.Fault(0x40000000, Access.Write);
        var derived = s.Do(new VmaAdvised(HvaRange.FromSize(Ram.Start, 0x1000), advice));
        Assert.Equal(unmaps, s.Unmapped(derived).Count > 0);
    }

    [Fact]
    public void Only_tdx_keeps_private_mappings_on_notifier_invalidation_and_arm64_drops_guest_memfd_ones()
    {
        // TDX keeps private entries in a root of their own; SNP and sw_protected VMs lose them too (6.18.38 kvm_mmu_unmap_gfn_range).
        var s = X86("6.16.1", X86Vendor.Intel, VmType.Tdx);
        s.Do(new GuestMemfdCreated(11, 0x400000, GuestMemfdFlags.None, null));
        s.Vma(0x7f2000000000, 0x400000, VmaFlags.VM_SHARED, HostMemType.WB, new Backing(BackingKind.Shmem));
        s.Slot(0, 0x0, 0x400000, 0x7f2000000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 11, 0);
        s.Do(new MemoryAttributesSet(new(0x0), 0x200000, true, null));
        s.Fault(0x1000, Access.Write, isPrivate: true);
        s.Fault(0x201000, Access.Write, isPrivate: false);
        var derived = s.Do(new VmaUnmapped(HvaRange.FromSize(new(0x7f2000000000), 0x400000)));
        Assert.Equal([new GpaRange(new(0x201000), new(0x202000))], s.Unmapped(derived));
        Assert.NotNull(s.EntryAt(0x1000));

        var arm = Arm64("6.18.0");
        arm.Do(new GuestMemfdCreated(7, 0x400000, GuestMemfdFlags.MMAP, null));
        arm.Vma(0xfffc00000000, 0x400000, VmaFlags.VM_SHARED, HostMemType.MT_NORMAL, new Backing(BackingKind.GuestMemfd));
        arm.Slot(3, 0x80000000, 0x400000, 0xfffc00000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 7, 0);
        arm.Fault(0x80000000, Access.Write);
        Assert.NotEmpty(arm.Unmapped(arm.Do(new MmuNotifierInvalidated(new(0xfffc00000000), new(0xfffc00001000)))));
    }

    [Fact]
    public void X86_memslot_delete_zaps_everything_unless_slot_zap_all_is_disabled()
    {
        Scenario Two(Scenario s)
        {
            s.Vma(0x7f0000000000, 0x800000, VmaFlags.VM_SHARED, HostMemType.WB, new Backing(BackingKind.Shmem));
            s.Slot(0, 0x0, 0x400000, 0x7f0000000000);
            s.Slot(1, 0x400000, 0x400000, 0x7f0000400000);
            s.Fault(0x1000, Access.Write);
            s.Fault(0x401000, Access.Write);
            return s;
        }

        var all = Two(X86());
        all.Slot(1, 0x400000, 0, 0x7f0000400000);
        Assert.Null(all.EntryAt(0x1000));

        var one = X86();
        one.Do(new CapabilityEnabled("KVM_CAP_DISABLE_QUIRKS2", Audit.Domain.ValueList.Of(new CapArg("quirks", Audit.Domain.ValueList.Of("SLOT_ZAP_ALL")))));
        Two(one).Slot(1, 0x400000, 0, 0x7f0000400000);
        Assert.NotNull(one.EntryAt(0x1000));
        Assert.Null(one.EntryAt(0x401000));
    }

    [Fact]
    public void Enabling_dirty_logging_write_protects_and_splits_only_with_eager_split_on_arm64()
    {
        var s = Hugetlb(Arm64(dic: false));
        s.Fault(0x40000000, Access.Write);
        var derived = s.Do(new MemslotSet(0, 0, new(0x40000000), 0x40000000, Ram.Start, MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES, null, null, null));
        var wp = Assert.Single(derived.OfType<Stage2WriteProtected>());
        Assert.False(wp.Split);
        Assert.Equal((M2, Perms.R), (s.EntryAt(0x40000000)!.Value.Granule, s.EntryAt(0x40000000)!.Value.Perms));

        // The next write fault maps 4K (force_pte) over the block.
        var w = s.Fault(0x40001000, Access.Write, FaultKind.Permission, granule: M2);
        Assert.Equal((FaultOutcome.Mapped, K4), (w.Outcome, w.Mapping!.Size));

        var x86 = X86();
        x86.Vma(0x7f0000000000, 0x400000, VmaFlags.VM_SHARED, HostMemType.WB, new Backing(BackingKind.Hugetlb, HostPageSize: M2));
        x86.Slot(0, 0x0, 0x400000, 0x7f0000000000);
        x86.Fault(0x0, Access.Write);
        Assert.True(x86.Do(new MemslotSet(0, 0, new(0x0), 0x400000, new(0x7f0000000000), MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES, null, null, null)).OfType<Stage2WriteProtected>().Single().Split);
        Assert.Equal(K4, x86.EntryAt(0x0)!.Value.Granule);
    }

    [Fact]
    public void Attaching_the_first_noncoherent_dma_device_zaps_all_on_vmx_only()
    {
        var vmx = X86("6.16.1");
        vmx.Vma(0x7f0000000000, 0x200000, VmaFlags.VM_SHARED, HostMemType.WB, new Backing(BackingKind.Shmem));
        vmx.Slot(0, 0x0, 0x200000, 0x7f0000000000);
        vmx.Fault(0x1000, Access.Write);
        Assert.NotEmpty(vmx.Unmapped(vmx.Do(new NoncoherentDmaChanged(true, "a"))));
        vmx.Fault(0x1000, Access.Write);
        Assert.Empty(vmx.Unmapped(vmx.Do(new NoncoherentDmaChanged(true, "b"))));

        var svm = X86("6.16.1", X86Vendor.Amd);
        svm.Vma(0x7f0000000000, 0x200000, VmaFlags.VM_SHARED, HostMemType.WB, new Backing(BackingKind.Shmem));
        svm.Slot(0, 0x0, 0x200000, 0x7f0000000000);
        svm.Fault(0x1000, Access.Write);
        Assert.Empty(svm.Unmapped(svm.Do(new NoncoherentDmaChanged(true, "a"))));
    }

    [Fact]
    public void Observed_mappings_that_differ_from_the_model_are_divergences()
    {
        var s = Hugetlb(Arm64());
        s.Fault(0x40000000, Access.Write);
        Assert.Empty(s.Do(new Stage2MappingObserved(new(0x40000000), M2, Stage2MemType.Normal, null, Perms.R | Perms.W | Perms.X, null)).OfType<DivergenceFound>());
        var d = Assert.Single(s.Do(new Stage2MappingObserved(new(0x40000000), K4, Stage2MemType.Normal, null, Perms.R | Perms.W | Perms.X, null)).OfType<DivergenceFound>());
        Assert.Contains("2M", d.Model, StringComparison.Ordinal);
        Assert.Single(s.Do(new Stage2MappingObserved(new(0x50000000), K4, null, null, Perms.R, null)).OfType<DivergenceFound>());
        Assert.Single(s.Do(new MemoryFaultExitObserved(new(0x40000000), K4, 0)).OfType<DivergenceFound>());
    }
}
