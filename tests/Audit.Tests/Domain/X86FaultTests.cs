using Audit.Domain;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Model;
using static Audit.Tests.Domain.Scenario;

namespace Audit.Tests.Domain;

/// <summary>domain.md section 4 and the x86 rows of section 2.</summary>
public sealed class X86FaultTests
{
    private static Scenario Ram(Scenario s, Backing? backing = null)
    {
        s.Vma(0x7f0000000000, 0x40000000, VmaFlags.VM_SHARED, HostMemType.WB, backing ?? new Backing(BackingKind.Shmem, StructPage: true));
        s.Slot(0, 0x0, 0x40000000, 0x7f0000000000);
        return s;
    }

    [Theory]
    [InlineData("6.10.0", "x86-vmx/6.10", true, true, "x86.vmx_get_mt_mask.guest_mtrr")]
    [InlineData("6.12.0", "x86-vmx/6.12", true, true, "x86.vmx_get_mt_mask.guest_pat")]
    [InlineData("6.16.1", "x86-vmx/6.16", true, true, "x86.vmx_get_mt_mask.ignore_guest_pat_quirk")]
    public void Vmx_get_mt_mask_ignores_guest_pat_without_noncoherent_dma(string kernel, string policy, bool wb, bool ipat, string rule)
    {
        var s = Ram(X86(kernel));
        Assert.Equal(policy, s.State.Policy.Id);
        var r = s.Fault(0x1000, Access.Write);
        Assert.Equal((wb ? Stage2MemType.WB : Stage2MemType.UC, (bool?)ipat), (r.Mapping!.MemType, r.Mapping.Ipat));
        Assert.Contains(r.Explanation, x => x.Rule == rule);
    }

    [Theory]
    [InlineData("6.11.0")]
    [InlineData("6.16.1")]
    public void Vmx_get_mt_mask_honours_guest_pat_with_noncoherent_dma(string kernel)
    {
        var s = Ram(X86(kernel));
        s.Do(new NoncoherentDmaChanged(true, "0000:01:00.0"));
        var r = s.Fault(0x1000, Access.Write);
        Assert.Equal((Stage2MemType.WB, (bool?)false), (r.Mapping!.MemType, r.Mapping.Ipat));
    }

    [Fact]
    public void Disabling_ignore_guest_pat_honours_guest_pat_on_6_16_only_on_self_snoop_cpus()
    {
        var quirk = new CapabilityEnabled("KVM_CAP_DISABLE_QUIRKS2", ValueList.Of(new CapArg("quirks", ValueList.Of("IGNORE_GUEST_PAT"))));
        var snoop = Ram(X86("6.16.1", selfSnoop: true));
        snoop.Do(quirk);
        Assert.Equal((bool?)false, snoop.Fault(0x1000, Access.Write).Mapping!.Ipat);

        var noSnoop = Ram(X86("6.16.1", selfSnoop: false));
        noSnoop.Do(quirk);
        Assert.Equal((bool?)true, noSnoop.Fault(0x1000, Access.Write).Mapping!.Ipat);

        // 6.12 has no quirk: WB + IPAT regardless.
        var v612 = Ram(X86("6.12.0"));
        v612.Do(quirk);
        Assert.Equal((bool?)true, v612.Fault(0x1000, Access.Write).Mapping!.Ipat);
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void Vmx_get_mt_mask_of_6_11_honours_guest_pat_on_self_snoop_cpus_without_noncoherent_dma(bool selfSnoop, bool ipat)
    {
        // 377b2f359d1f "KVM: VMX: Always honor guest PAT on CPUs that support self-snoop" (6.11), reverted in 6.12.
        var s = Ram(X86("6.11.0", selfSnoop: selfSnoop));
        var r = s.Fault(0x1000, Access.Write);
        Assert.Equal((Stage2MemType.WB, (bool?)ipat), (r.Mapping!.MemType, r.Mapping.Ipat));
        Assert.Equal(selfSnoop, r.Explanation.Any(x => x.Rule == Rules.X86VmxSelfSnoop.Id));
    }

    [Fact]
    public void Tdx_vms_never_have_the_ignore_guest_pat_quirk()
    {
        var s = Ram(X86("6.16.1", vm: VmType.Tdx));
        var r = s.Fault(0x1000, Access.Write, isPrivate: false);
        Assert.Equal((bool?)false, r.Mapping!.Ipat);
    }

    [Theory]
    [InlineData(BackingKind.Devmem, true, HostMemType.UC, null)]
    [InlineData(BackingKind.Vfio, false, HostMemType.UC, false)]
    public void Kvm_is_mmio_pfn_maps_mmio_as_uc(BackingKind kind, bool structPage, HostMemType memType, bool? e820)
    {
        var s = X86("6.16.1");
        s.Vma(0x7f0000000000, 0x200000, VmaFlags.VM_SHARED | VmaFlags.VM_IO | VmaFlags.VM_PFNMAP, memType, new Backing(kind, StructPage: structPage, E820Ram: e820));
        s.Slot(0, 0xfe000000, 0x200000, 0x7f0000000000);
        var r = s.Fault(0xfe000000, Access.Write);
        Assert.Equal((Stage2MemType.UC, (bool?)false), (r.Mapping!.MemType, r.Mapping.Ipat));
        Assert.Contains(r.Explanation, x => x.Rule == Rules.X86MmioPfn.Id && x.Text.Contains("MMIO", StringComparison.Ordinal));
    }

    [Fact]
    public void Svm_honours_guest_pat_and_shadow_paging_ignores_it()
    {
        var svm = Ram(X86("6.16.1", X86Vendor.Amd));
        Assert.Equal("x86-svm/6.16", svm.State.Policy.Id);
        Assert.Equal((Stage2MemType.WB, (bool?)false), (svm.Fault(0x1000, Access.Write).Mapping!.MemType, svm.Fault(0x2000, Access.Write).Mapping!.Ipat));

        var shadow = Ram(X86("6.18.0", tdp: false));
        Assert.Equal("x86-shadow/6.18", shadow.State.Policy.Id);
        var r = shadow.Fault(0x1000, Access.Read);
        Assert.Equal(Stage2MemType.WB, r.Mapping!.MemType);
        Assert.Contains(r.Explanation, x => x.Rule == Rules.X86ShadowMemtype.Id);
    }

    [Fact]
    public void Snp_private_shared_mismatch_takes_a_memory_fault_exit()
    {
        var s = X86("6.16.1", X86Vendor.Amd, VmType.Snp);
        s.Do(new GuestMemfdCreated(11, 0x40000000, GuestMemfdFlags.None, null));
        s.Vma(0x7f2000000000, 0x40000000, VmaFlags.VM_SHARED, HostMemType.WB, new Backing(BackingKind.Shmem));
        s.Slot(0, 0x0, 0x40000000, 0x7f2000000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 11, 0);
        s.Do(new MemoryAttributesSet(new(0x0), 0x40000000, true, null));

        var priv = s.Fault(0x1000, Access.Exec, isPrivate: true);
        Assert.Equal(FaultOutcome.Mapped, priv.Outcome);
        Assert.True(s.EntryAt(0x1000)!.Value.Private);

        var shared = s.Fault(0x200000, Access.Write, isPrivate: false);
        Assert.Equal((FaultOutcome.MemoryFaultExit, Errno.EFAULT), (shared.Outcome, shared.Errno));
        Assert.Contains(shared.Explanation, x => x.Rule == Rules.X86PrivateMismatch.Id);
        Assert.Empty(s.Do(new MemoryFaultExitObserved(new(0x200000), 0x1000, 0)).OfType<DivergenceFound>());

        s.Do(new MemoryAttributesSet(new(0x200000), 0x200000, false, null));
        Assert.Equal(FaultOutcome.Mapped, s.Fault(0x200000, Access.Write, isPrivate: false).Outcome);
        Assert.False(s.EntryAt(0x200000)!.Value.Private);
    }

    [Fact]
    public void Sw_protected_vms_derive_privacy_from_the_attribute_so_no_mismatch_arises()
    {
        var s = X86("6.16.1", vm: VmType.SwProtected);
        s.Do(new GuestMemfdCreated(11, 0x40000000, GuestMemfdFlags.None, null));
        s.Vma(0x7f2000000000, 0x40000000, VmaFlags.VM_SHARED, HostMemType.WB, new Backing(BackingKind.Shmem));
        s.Slot(0, 0x0, 0x40000000, 0x7f2000000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 11, 0);
        s.Do(new MemoryAttributesSet(new(0x0), 0x200000, true, null));

        // The recorded "private": false is ignored: the attribute says private.
        var r = s.Fault(0x1000, Access.Write, isPrivate: false);
        Assert.Equal(FaultOutcome.Mapped, r.Outcome);
        Assert.True(s.EntryAt(0x1000)!.Value.Private);
        Assert.DoesNotContain(r.Explanation, x => x.Rule == Rules.X86PrivateMismatch.Id);
    }

    [Fact]
    public void Kvm_mmu_hugepage_adjust_takes_the_smallest_level_allowed()
    {
        var huge = Ram(X86("6.16.1"), new Backing(BackingKind.Hugetlb, HostPageSize: M2));
        Assert.Equal(M2, huge.Fault(0x201000, Access.Write).Mapping!.Size);

        var logging = Ram(X86("6.16.1"), new Backing(BackingKind.Hugetlb, HostPageSize: M2));
        logging.Slot(0, 0x0, 0x40000000, 0x7f0000000000, MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES);
        Assert.Equal(K4, logging.Fault(0x201000, Access.Write).Mapping!.Size);

        var misaligned = X86("6.16.1");
        misaligned.Vma(0x7f0000000000, 0x40000000, VmaFlags.VM_SHARED, HostMemType.WB, new Backing(BackingKind.Hugetlb, HostPageSize: M2));
        misaligned.Slot(0, 0x1000, 0x3fe00000, 0x7f0000000000);
        Assert.Equal(K4, misaligned.Fault(0x201000, Access.Write).Mapping!.Size);
    }

    [Fact]
    public void A_2m_range_mixing_private_and_shared_maps_4k()
    {
        var s = X86("6.16.1", X86Vendor.Amd, VmType.Snp);
        s.Do(new GuestMemfdCreated(11, 0x40000000, GuestMemfdFlags.None, null));
        s.Vma(0x7f2000000000, 0x40000000, VmaFlags.VM_SHARED, HostMemType.WB, new Backing(BackingKind.Hugetlb, HostPageSize: M2));
        s.Slot(0, 0x0, 0x40000000, 0x7f2000000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 11, 0);
        s.Do(new MemoryAttributesSet(new(0x0), 0x1000, true, null));
        Assert.Equal(K4, s.Fault(0x100000, Access.Write, isPrivate: false).Mapping!.Size);
        Assert.Equal(M2, s.Fault(0x400000, Access.Write, isPrivate: false).Mapping!.Size);
    }

    [Fact]
    public void A_write_to_a_read_only_slot_is_emulated_as_mmio_and_no_slot_is_mmio()
    {
        var s = X86("6.16.1");
        s.Vma(0x7f0000000000, 0x200000, VmaFlags.None, HostMemType.WB, Anon(), "r--");
        s.Slot(0, 0x0, 0x200000, 0x7f0000000000, MemslotFlags.KVM_MEM_READONLY);
        Assert.Equal(FaultOutcome.MmioExit, s.Fault(0x1000, Access.Write).Outcome);
        Assert.Equal(Perms.R | Perms.X, s.Fault(0x1000, Access.Read).Mapping!.Perms);
        Assert.Equal(FaultOutcome.MmioExit, s.Fault(0x80000000, Access.Read).Outcome);
    }

    [Fact]
    public void A_private_fault_after_a_punch_hole_maps_a_fresh_folio_and_after_release_exits()
    {
        var s = X86("6.16.1", X86Vendor.Amd, VmType.Snp);
        s.Do(new GuestMemfdCreated(11, 0x400000, GuestMemfdFlags.None, null));
        s.Vma(0x7f2000000000, 0x400000, VmaFlags.VM_SHARED, HostMemType.WB, new Backing(BackingKind.Shmem));
        s.Slot(0, 0x0, 0x400000, 0x7f2000000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 11, 0);
        s.Do(new MemoryAttributesSet(new(0x0), 0x400000, true, null));
        s.Fault(0x1000, Access.Write, isPrivate: true);

        var punch = s.Do(new GuestMemfdFallocated(11, 0x0, 0x200000, true));
        Assert.Equal([new Audit.Domain.Addresses.GpaRange(new(0x1000), new(0x2000))], s.Unmapped(punch));
        // kvm_gmem_get_pfn -> kvm_gmem_get_folio (filemap_grab_folio) allocates a fresh folio: mapped again.
        var refault = s.Fault(0x1000, Access.Write, isPrivate: true);
        Assert.Equal(FaultOutcome.Mapped, refault.Outcome);
        Assert.Contains(refault.Explanation, x => x.Rule == Rules.GmemFreshFolio.Id);
        Assert.Equal(FaultOutcome.Mapped, s.Fault(0x201000, Access.Write, isPrivate: true).Outcome);

        s.Do(new GuestMemfdClosed(11));
        Assert.Null(s.EntryAt(0x201000));
        Assert.Equal(FaultOutcome.MemoryFaultExit, s.Fault(0x201000, Access.Write, isPrivate: true).Outcome);
    }
}

/// <summary>Host-pte writability on read faults, and shadow paging's clean guest PTEs (found in the real kvm_pvm capture).</summary>
public sealed class X86ReadFaultWritabilityTests
{
    private static Scenario Anon(string? policy = null)
    {
        var s = X86("6.18.0", policy: policy);
        s.Vma(0x7f0000000000, 0x200000, VmaFlags.None, HostMemType.WB, Scenario.Anon());
        s.Slot(0, 0x0, 0x200000, 0x7f0000000000);
        return s;
    }

    [Fact]
    public void A_read_of_untouched_anonymous_memory_maps_without_w_and_after_a_guest_write_with_w()
    {
        var s = Anon();
        Assert.Equal(Perms.R | Perms.X, s.Fault(0x1000).Mapping!.Perms);
        var write = s.Fault(0x2000, Access.Write);
        Assert.Equal(Perms.R | Perms.W | Perms.X, write.Mapping!.Perms);

        // The host pte stays writable after an invalidation that did not zap the page (here: a re-read after mprotect back to rw).
        s.Do(new VmaProtectionChanged(HvaRange.FromSize(new Hva(0x7f0000000000), 0x200000), Perms.R, null));
        s.Do(new VmaProtectionChanged(HvaRange.FromSize(new Hva(0x7f0000000000), 0x200000), Perms.R | Perms.W, null));
        var reread = s.Fault(0x2000);
        Assert.Equal(Perms.R | Perms.W | Perms.X, reread.Mapping!.Perms);
        var writeSeq = s.Log.First(x => x.Input is GuestFaulted { Access: Access.Write }).Seq;
        Assert.Contains(reread.Explanation.SelectMany(e => e.Facts), f => f.Name == "host.pte" && f.Seq == writeSeq);

        // MADV_DONTNEED zaps it: the zero page again.
        s.Do(new VmaAdvised(HvaRange.FromSize(new Hva(0x7f0000000000), 0x200000), "MADV_DONTNEED"));
        Assert.Equal(Perms.R | Perms.X, s.Fault(0x2000).Mapping!.Perms);
    }

    [Fact]
    public void A_read_of_shared_writable_shmem_maps_with_w()
    {
        var s = X86("6.18.0");
        s.Vma(0x7f0000000000, 0x100000, VmaFlags.VM_SHARED, HostMemType.WB, new Backing(BackingKind.Shmem, "/memfd:guest-ram", StructPage: true));
        s.Slot(0, 0xe00000, 0x100000, 0x7f0000000000);
        Assert.Equal(Perms.R | Perms.W | Perms.X, s.Fault(0xe00000).Mapping!.Perms);
    }

    [Fact]
    public void Shadow_paging_maps_a_read_through_a_clean_guest_pte_without_w()
    {
        var s = X86("6.18.0", policy: "x86-shadow");
        s.Vma(0x7f0000000000, 0x100000, VmaFlags.VM_SHARED, HostMemType.WB, new Backing(BackingKind.Shmem, StructPage: true));
        s.Slot(0, 0x0, 0x100000, 0x7f0000000000);
        s.Do(new GuestFaulted(0, new Gpa(0x1000), Access.Read, FaultKind.Translation, GuestPteDirty: false));
        var clean = (FaultResolved)s.Log[^1].Derived[0];
        Assert.Equal(Perms.R | Perms.X, clean.Mapping!.Perms);
        Assert.Contains(clean.Explanation, e => e.Rule == Rules.X86ShadowCleanGpte.Id);

        s.Do(new GuestFaulted(0, new Gpa(0x2000), Access.Read, FaultKind.Translation, GuestPteDirty: true));
        Assert.Equal(Perms.R | Perms.W | Perms.X, ((FaultResolved)s.Log[^1].Derived[0]).Mapping!.Perms);

        // Under EPT the guest's page tables are not KVM's: the dirty bit does not matter.
        var ept = X86("6.18.0");
        ept.Vma(0x7f0000000000, 0x100000, VmaFlags.VM_SHARED, HostMemType.WB, new Backing(BackingKind.Shmem, StructPage: true));
        ept.Slot(0, 0x0, 0x100000, 0x7f0000000000);
        ept.Do(new GuestFaulted(0, new Gpa(0x1000), Access.Read, FaultKind.Translation, GuestPteDirty: false));
        Assert.Equal(Perms.R | Perms.W | Perms.X, ((FaultResolved)ept.Log[^1].Derived[0]).Mapping!.Perms);
    }
}
