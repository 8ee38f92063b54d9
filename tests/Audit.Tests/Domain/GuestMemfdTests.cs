using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Model;
using static Audit.Tests.Domain.Scenario;

namespace Audit.Tests.Domain;

/// <summary>domain.md section 5: guest_memfd creation, memory attributes, and the in-place conversion proposal.</summary>
public sealed class GuestMemfdTests
{
    private static IoctlDecided Create(Scenario s, GuestMemfdFlags flags, ulong size = 0x400000) =>
        s.Do(new GuestMemfdCreated(5, size, flags, null)).OfType<IoctlDecided>().Single();

    [Fact]
    public void Kvm_gmem_create_accepts_flags_only_from_6_18()
    {
        Assert.Equal(Errno.EINVAL, Create(X86("6.12.0", vm: VmType.SwProtected), GuestMemfdFlags.MMAP).PredictedErrno);
        Assert.Equal(0, Create(X86("6.18.0"), GuestMemfdFlags.MMAP | GuestMemfdFlags.INIT_SHARED).PredictedErrno);
        Assert.Equal(Errno.EINVAL, Create(X86("6.18.0", X86Vendor.Amd, VmType.Snp), GuestMemfdFlags.INIT_SHARED).PredictedErrno);
        Assert.Equal(Errno.ENOTTY, Create(X86("6.6.0"), GuestMemfdFlags.None).PredictedErrno);
        Assert.Equal(Errno.ENOTTY, Create(Arm64("6.17.2"), GuestMemfdFlags.MMAP).PredictedErrno);
    }

    [Fact]
    public void Kvm_gmem_create_refuses_an_unaligned_or_empty_size()
    {
        Assert.Equal(Errno.EINVAL, Create(X86("6.12.0", vm: VmType.SwProtected), GuestMemfdFlags.None, 0x1800).PredictedErrno);
        Assert.Equal(Errno.EINVAL, Create(X86("6.12.0", vm: VmType.SwProtected), GuestMemfdFlags.None, 0).PredictedErrno);
    }

    [Fact]
    public void Kvm_vm_ioctl_set_mem_attributes_validates_and_zaps_mappings_of_the_old_kind()
    {
        Assert.Equal(Errno.EINVAL, X86().Do(new MemoryAttributesSet(new(0), 0x1000, true, null)).OfType<IoctlDecided>().Single().PredictedErrno);

        var s = X86("6.16.1", vm: VmType.SwProtected);
        Assert.Equal(Errno.EINVAL, s.Do(new MemoryAttributesSet(new(0x800), 0x1000, true, null)).OfType<IoctlDecided>().Single().PredictedErrno);
        s.Vma(0x7f0000000000, 0x400000, VmaFlags.VM_SHARED, HostMemType.WB, new Backing(BackingKind.Shmem));
        s.Slot(0, 0x0, 0x400000, 0x7f0000000000);
        s.Fault(0x1000, Access.Write);
        s.Fault(0x3000, Access.Write);
        var toPrivate = s.Do(new MemoryAttributesSet(new(0x0), 0x2000, true, null));
        Assert.Equal([new GpaRange(new(0x1000), new(0x2000))], s.Unmapped(toPrivate));
        Assert.NotNull(s.EntryAt(0x3000));

        // Again: already private, a no-op without zaps.
        var again = s.Do(new MemoryAttributesSet(new(0x0), 0x2000, true, null));
        Assert.Empty(s.Unmapped(again));
        Assert.Contains("already", again.OfType<IoctlDecided>().Single().Explanation[0].Text, StringComparison.Ordinal);
    }

    [Fact]
    public void In_place_conversion_moves_shareability_into_the_guest_memfd_and_zaps_the_range()
    {
        var s = X86("6.16.1", vm: VmType.SwProtected);
        s.Do(new GuestMemfdCreated(5, 0x400000, GuestMemfdFlags.None, null));
        s.Vma(0x7f0000000000, 0x400000, VmaFlags.VM_SHARED, HostMemType.WB, new Backing(BackingKind.Shmem));
        s.Slot(0, 0x0, 0x400000, 0x7f0000000000, MemslotFlags.KVM_MEM_GUEST_MEMFD, 5, 0);
        s.Do(new MemoryAttributesSet(new(0x0), 0x400000, true, null));
        Assert.True(s.Fault(0x1000, Access.Write).Outcome == FaultOutcome.Mapped && s.EntryAt(0x1000)!.Value.Private);

        var shared = s.Do(new GuestMemfdConverted(5, 0x0, 0x200000, Shareability.Shared, "KVM_GMEM_CONVERT", 0, null));
        Assert.Equal(0, shared.OfType<IoctlDecided>().Single().PredictedErrno);
        Assert.Equal([new GpaRange(new(0x1000), new(0x2000))], s.Unmapped(shared));
        s.Fault(0x1000, Access.Write);
        Assert.False(s.EntryAt(0x1000)!.Value.Private);

        var busy = s.Do(new GuestMemfdConverted(5, 0x0, 0x200000, Shareability.Private, "KVM_SET_MEMORY_ATTRIBUTES2", Errno.EAGAIN, 0x1000));
        Assert.Equal(Errno.EAGAIN, busy.OfType<IoctlDecided>().Single().PredictedErrno);
        Assert.Empty(busy.OfType<DivergenceFound>());
        Assert.Equal(Errno.EINVAL, s.Do(new GuestMemfdConverted(5, 0x800, 0x1000, Shareability.Shared, "KVM_GMEM_CONVERT", null, null)).OfType<IoctlDecided>().Single().PredictedErrno);
        Assert.Equal(Errno.EBADF, s.Do(new GuestMemfdConverted(6, 0, 0x1000, Shareability.Shared, "KVM_GMEM_CONVERT", null, null)).OfType<IoctlDecided>().Single().PredictedErrno);
    }
}
