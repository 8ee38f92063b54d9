using Audit.Domain.Events;
using Audit.Domain.Model;
using static Audit.Tests.Domain.Scenario;

namespace Audit.Tests.Domain;

/// <summary>domain.md sections 3 (arm64 prepare), 5 (binding) and 7 (kvm_set_memory_region).</summary>
public sealed class MemslotTests
{
    private static Scenario WithRam(Scenario s)
    {
        s.Vma(0x7f0000000000, 0x80000000, VmaFlags.VM_SHARED, HostMemType.MT_NORMAL, new Backing(BackingKind.Shmem));
        return s;
    }

    [Fact]
    public void Kvm_set_memory_region_refuses_an_overlapping_slot_with_eexist()
    {
        var s = WithRam(X86());
        Assert.Equal(0, s.Slot(0, 0x0, 0x40000000, 0x7f0000000000).PredictedErrno);
        var d = s.Slot(1, 0x3ff00000, 0x200000, 0x7f0040000000);
        Assert.Equal(Errno.EEXIST, d.PredictedErrno);
        Assert.Contains(d.Explanation, x => x.Rule == Rules.SlotOverlap.Id);
        Assert.Single(s.State.Slots);
    }

    [Theory]
    [InlineData(0x1000UL, 0x1800UL, 0x7f0000000000UL)]
    [InlineData(0x1800UL, 0x1000UL, 0x7f0000000000UL)]
    [InlineData(0x1000UL, 0x1000UL, 0x7f0000000800UL)]
    public void Kvm_set_memory_region_refuses_misalignment_with_einval(ulong gpa, ulong size, ulong hva)
    {
        var d = WithRam(Arm64()).Slot(0, gpa, size, hva);
        Assert.Equal((SlotChange.Create, Errno.EINVAL), (d.Change, d.PredictedErrno));
        Assert.Contains(d.Explanation, x => x.Rule == Rules.SlotAlignment.Id);
    }

    [Fact]
    public void Kvm_set_memory_region_classifies_create_move_flags_only_noop_and_delete()
    {
        var s = WithRam(X86());
        Assert.Equal(SlotChange.Create, s.Slot(0, 0x0, 0x200000, 0x7f0000000000).Change);
        Assert.Equal(SlotChange.Noop, s.Slot(0, 0x0, 0x200000, 0x7f0000000000).Change);
        Assert.Equal(SlotChange.FlagsOnly, s.Slot(0, 0x0, 0x200000, 0x7f0000000000, MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES).Change);
        var move = s.Slot(0, 0x40000000, 0x200000, 0x7f0000000000, MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES);
        Assert.Equal((SlotChange.Move, 0), (move.Change, move.PredictedErrno));
        Assert.Equal(0x40000000UL, s.State.Slots[(0, 0)].Gpa.Value);
        var del = s.Slot(0, 0x40000000, 0, 0x7f0000000000);
        Assert.Equal((SlotChange.Delete, 0), (del.Change, del.PredictedErrno));
        Assert.Empty(s.State.Slots);
        Assert.Equal(Errno.EINVAL, s.Slot(0, 0x40000000, 0, 0x7f0000000000).PredictedErrno);
    }

    [Theory]
    [InlineData(0x7f0000200000UL, 0x200000UL, MemslotFlags.None)]
    [InlineData(0x7f0000000000UL, 0x400000UL, MemslotFlags.None)]
    [InlineData(0x7f0000000000UL, 0x200000UL, MemslotFlags.KVM_MEM_READONLY)]
    public void Kvm_set_memory_region_refuses_changing_hva_size_or_readonly(ulong hva, ulong size, MemslotFlags flags)
    {
        var s = WithRam(X86());
        s.Slot(0, 0x0, 0x200000, 0x7f0000000000);
        var d = s.Slot(0, 0x0, size, hva, flags);
        Assert.Equal(Errno.EINVAL, d.PredictedErrno);
        Assert.Equal(0x200000UL, s.State.Slots[(0, 0)].Size);
    }

    [Fact]
    public void Check_memory_region_flags_refuses_proposal_flags_outside_their_what_if()
    {
        var s = WithRam(Arm64());
        Assert.Equal(Errno.EINVAL, s.Slot(0, 0x0, 0x200000, 0x7f0000000000, MemslotFlags.KVM_MEM_ENABLE_CACHEABLE_PFNMAP).PredictedErrno);
        var w = WithRam(Arm64(policy: "arm64/6.17+memslot-flag"));
        Assert.Equal(0, w.Slot(0, 0x0, 0x200000, 0x7f0000000000, MemslotFlags.KVM_MEM_ENABLE_CACHEABLE_PFNMAP).PredictedErrno);
    }

    [Fact]
    public void Kvm_set_memory_region_refuses_slot_ids_and_address_spaces_out_of_range()
    {
        var s = WithRam(Arm64());
        Assert.Equal(Errno.EINVAL, s.Slot(40000, 0x0, 0x200000, 0x7f0000000000).PredictedErrno);
        Assert.Equal(Errno.EINVAL, s.Slot(0, 0x0, 0x200000, 0x7f0000000000, asId: 1).PredictedErrno);
        Assert.Equal(0, WithRam(X86()).Slot(0, 0x0, 0x200000, 0x7f0000000000, asId: 1).PredictedErrno);
    }

    [Fact]
    public void Guest_memfd_slots_cannot_be_moved_or_changed_only_deleted()
    {
        var s = X86(vm: VmType.SwProtected, kernel: "6.12.0");
        s.Do(new GuestMemfdCreated(9, 0x40000000, GuestMemfdFlags.None, null));
        s.Vma(0x7f0000000000, 0x40000000, VmaFlags.VM_SHARED, HostMemType.WB, new Backing(BackingKind.Shmem));
        Assert.Equal(0, s.Slot(0, 0x0, 0x40000000, 0x7f0000000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 9, 0).PredictedErrno);
        Assert.Equal(Errno.EINVAL, s.Slot(0, 0x80000000, 0x40000000, 0x7f0000000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 9, 0).PredictedErrno);
        Assert.Equal(Errno.EINVAL, s.Slot(0, 0x0, 0x40000000, 0x7f0000000000, MemslotFlags.KVM_MEM_GUEST_MEMFD | MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES, 9, 0).PredictedErrno);
        Assert.Equal(0, s.Slot(0, 0x0, 0, 0x7f0000000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 9, 0).PredictedErrno);
        Assert.Equal(0, s.State.Gmem[9].Bindings.Count);
    }

    [Fact]
    public void Kvm_gmem_bind_checks_the_file_its_size_and_double_binding()
    {
        var s = X86(vm: VmType.Snp, kernel: "6.12.0", vendor: X86Vendor.Amd);
        s.Vma(0x7f0000000000, 0x80000000, VmaFlags.VM_SHARED, HostMemType.WB, new Backing(BackingKind.Shmem));
        Assert.Equal(Errno.EBADF, s.Slot(0, 0x0, 0x200000, 0x7f0000000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 9, 0).PredictedErrno);
        s.Do(new GuestMemfdCreated(9, 0x400000, GuestMemfdFlags.None, null));
        Assert.Equal(Errno.EINVAL, s.Slot(0, 0x0, 0x200000, 0x7f0000000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 9, 0x300000).PredictedErrno);
        Assert.Equal(0, s.Slot(0, 0x0, 0x200000, 0x7f0000000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 9, 0).PredictedErrno);
        var twice = s.Slot(1, 0x200000, 0x200000, 0x7f0000200000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 9, 0x100000);
        Assert.Equal(Errno.EINVAL, twice.PredictedErrno);
        Assert.Contains(twice.Explanation, x => x.Rule == Rules.GmemBind.Id);
    }

    [Fact]
    public void Guest_memfd_needs_a_vm_with_private_memory_on_x86_before_6_18()
    {
        var s = X86(kernel: "6.12.0");
        s.Do(new GuestMemfdCreated(9, 0x400000, GuestMemfdFlags.None, null));
        Assert.Equal(Errno.EINVAL, s.Slot(0, 0x0, 0x200000, 0x7f0000000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 9, 0).PredictedErrno);
        var n = X86(kernel: "6.18.0");
        n.Do(new GuestMemfdCreated(9, 0x400000, GuestMemfdFlags.MMAP | GuestMemfdFlags.INIT_SHARED, null));
        Assert.Equal(0, n.Slot(0, 0x0, 0x200000, 0x7f0000000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 9, 0).PredictedErrno);
    }

    [Fact]
    public void Kvm_arch_prepare_memory_region_refuses_mte_without_vm_mte_allowed()
    {
        var s = Arm64("6.17.2");
        s.Do(new CapabilityEnabled("KVM_CAP_ARM_MTE", Audit.Domain.ValueList<CapArg>.Empty));
        s.Vma(0x7f0000000000, 0x200000, VmaFlags.VM_SHARED, HostMemType.MT_NORMAL, new Backing(BackingKind.File, "/img"));
        var d = s.Slot(0, 0x0, 0x200000, 0x7f0000000000);
        Assert.Equal(Errno.EINVAL, d.PredictedErrno);
        Assert.Contains(d.Explanation, x => x.Rule == Rules.Arm64SlotMte.Id);

        s.Vma(0x7f0000400000, 0x200000, VmaFlags.VM_SHARED | VmaFlags.VM_MTE_ALLOWED, HostMemType.MT_NORMAL_TAGGED, new Backing(BackingKind.Shmem));
        Assert.Equal(0, s.Slot(1, 0x400000, 0x200000, 0x7f0000400000).PredictedErrno);
    }

    [Fact]
    public void Before_6_2_mte_refused_shared_vmas_at_memslot_creation()
    {
        var s = Arm64("5.15.0");
        s.Do(new CapabilityEnabled("KVM_CAP_ARM_MTE", Audit.Domain.ValueList<CapArg>.Empty));
        s.Vma(0x7f0000000000, 0x200000, VmaFlags.VM_SHARED | VmaFlags.VM_MTE_ALLOWED, HostMemType.MT_NORMAL, new Backing(BackingKind.Shmem));
        Assert.Equal(Errno.EINVAL, s.Slot(0, 0x0, 0x200000, 0x7f0000000000).PredictedErrno);
    }

    [Fact]
    public void Kvm_arch_prepare_memory_region_refuses_dirty_logging_a_pfnmap()
    {
        var s = Arm64("6.17.2");
        s.Vma(0xfffd00000000, 0x200000, BarFlags, HostMemType.MT_DEVICE_nGnRnE, Vfio(0x66000));
        var d = s.Slot(2, 0x10000000, 0x200000, 0xfffd00000000, MemslotFlags.KVM_MEM_LOG_DIRTY_PAGES);
        Assert.Equal(Errno.EINVAL, d.PredictedErrno);
        Assert.Contains(d.Explanation, x => x.Rule == Rules.Arm64SlotPfnmapLog.Id);
    }

    [Fact]
    public void Kvm_arch_prepare_memory_region_refuses_a_slot_beyond_the_ipa_size()
    {
        var s = Arm64("6.17.2", ipaBits: 40);
        s.Vma(0x7f0000000000, 0x200000, VmaFlags.None, HostMemType.MT_NORMAL, Anon());
        Assert.Equal(Errno.EFAULT, s.Slot(0, 1UL << 40, 0x200000, 0x7f0000000000).PredictedErrno);
    }

    [Theory]
    [InlineData(HostMemType.MT_NORMAL, MemslotFlags.None, Errno.EINVAL)]
    [InlineData(HostMemType.MT_NORMAL, MemslotFlags.KVM_MEM_ENABLE_CACHEABLE_PFNMAP, 0)]
    [InlineData(HostMemType.MT_DEVICE_nGnRnE, MemslotFlags.None, 0)]
    public void What_if_memslot_flag_requires_the_flag_for_cacheable_pfnmap(HostMemType memType, MemslotFlags flags, int errno)
    {
        var s = Arm64(policy: "arm64/6.17+memslot-flag");
        s.Vma(0xfffe00000000, 0x40000000, PfnFlags, memType, Vfio(0x40000000));
        Assert.Equal(errno, s.Slot(1, 0x40000000000, 0x40000000, 0xfffe00000000, flags).PredictedErrno);
    }

    [Theory]
    [InlineData(HostMemType.MT_NORMAL, MemslotFlags.None, Errno.EINVAL)]
    [InlineData(HostMemType.MT_NORMAL, MemslotFlags.KVM_MEM_FORCE_CACHEABLE_PFNMAP, 0)]
    [InlineData(HostMemType.MT_DEVICE_nGnRnE, MemslotFlags.KVM_MEM_FORCE_CACHEABLE_PFNMAP, Errno.EINVAL)]
    [InlineData(HostMemType.MT_DEVICE_nGnRnE, MemslotFlags.None, 0)]
    public void What_if_force_check_refuses_a_disagreeing_flag(HostMemType memType, MemslotFlags flags, int errno)
    {
        var s = Arm64(policy: "arm64/6.17+force-check");
        s.Vma(0xfffe00000000, 0x40000000, PfnFlags, memType, Vfio(0x40000000));
        var d = s.Slot(1, 0x40000000000, 0x40000000, 0xfffe00000000, flags);
        Assert.Equal(errno, d.PredictedErrno);
        if (errno != 0)
        {
            Assert.Contains(d.Explanation, x => x.Rule == Rules.WhatIfForceCheck.Id);
        }
    }

    [Fact]
    public void A_recorded_errno_that_differs_from_the_model_is_a_divergence()
    {
        var s = WithRam(X86());
        var derived = s.Do(new MemslotSet(0, 0, new(0x0), 0x200000, new(0x7f0000000000), MemslotFlags.None, null, null, Errno.EINVAL));
        var d = Assert.Single(derived.OfType<DivergenceFound>());
        Assert.Contains("returns 0", d.Model, StringComparison.Ordinal);
        Assert.Contains("-EINVAL", d.Kernel, StringComparison.Ordinal);
        Assert.Empty(s.Do(new MemslotSet(1, 0, new(0x1000), 0x1000, new(0x7f0000000000), MemslotFlags.None, null, null, Errno.EEXIST)).OfType<DivergenceFound>());
    }
}
