using Audit.Api.Import;
using Audit.Domain.Events;

namespace Audit.Tests.Import;

/// <summary>strace's options, on lines in the form strace prints them (src/strace.c printleader, src/util.c printfd, src/kvm.c).</summary>
public sealed class StraceVariantTests
{
    private static ImportResult Strace(params string[] lines) => StraceImporter.Read("s.txt", new StringReader(string.Join('\n', lines)));

    private static void AllAccounted(ImportResult r)
    {
        Assert.Null(r.Error);
        Assert.Equal(r.Lines, r.Parsed + r.Counted.Values.Sum());
    }

    [Fact]
    public void A_yy_kvm_vcpu_capture_reads_a_deleted_memfd_result_and_names_the_exit()
    {
        var r = Strace(
            "16206 00:26:28.940100 memfd_create(\"guest-ram\", MFD_CLOEXEC) = 8</memfd:guest-ram>(deleted)",
            "16206 00:26:28.940156 mmap(NULL, 1048576, PROT_READ|PROT_WRITE, MAP_SHARED, 8</memfd:guest-ram>(deleted), 0) = 0x7f81eca2b000",
            "16206 00:26:28.940160 ioctl(3</dev/kvm<char 10:232>>, KVM_CREATE_VM, 0) = 5<anon_inode:kvm-vm>",
            "16206 00:26:28.940169 ioctl(5<anon_inode:kvm-vm>, KVM_SET_USER_MEMORY_REGION, {slot=6, flags=0, guest_phys_addr=0xe00000, memory_size=1048576, userspace_addr=0x7f81eca2b000}) = 0",
            "16207 00:26:28.947265 ioctl(9<anon_inode:kvm-vcpu:0>, KVM_RUN, 0) = 0 (KVM_EXIT_IO)",
            "16206 00:26:28.947300 close(4<TCP:[127.0.0.1:22->127.0.0.1:4000]>) = 0",
            "16206 00:26:28.947301 close(7<socket:[1234]>) = 0");
        AllAccounted(r);
        var memfd = Assert.IsType<VmaMapped>(r.Events[0].Event);
        Assert.Equal((BackingKind.Shmem, "/memfd:guest-ram", VmaFlags.VM_SHARED), (memfd.Backing.Kind, memfd.Backing.Path, memfd.Flags));
        Assert.IsType<VmCreated>(r.Events[1].Event);
        Assert.Equal(0xe00000UL, Assert.IsType<MemslotSet>(r.Events[2].Event).Gpa.Value);
        Assert.Equal(1, r.Counted["ioctl KVM_RUN -> KVM_EXIT_IO"]);
        Assert.Equal(Arch.X86_64, r.Host.Arch?.Value);
        Assert.Contains("KVM_EXIT_IO", r.Host.Arch!.Why, StringComparison.Ordinal);
    }

    [Fact]
    public void Raw_and_verbose_xlat_styles_give_the_same_events_as_names()
    {
        string[] named =
        [
            "100 00:00:01.000001 mmap(NULL, 2097152, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000",
            "100 00:00:01.000002 madvise(0x7f0000000000, 4096, MADV_DONTNEED) = 0",
            "100 00:00:01.000003 ioctl(5, KVM_SET_USER_MEMORY_REGION, {slot=1, flags=KVM_MEM_READONLY, guest_phys_addr=0x100000, memory_size=2097152, userspace_addr=0x7f0000000000}) = 0",
        ];
        string[] raw =
        [
            "100 00:00:01.000001 mmap(NULL, 2097152, 0x3, 0x22, -1, 0) = 0x7f0000000000",
            "100 00:00:01.000002 madvise(0x7f0000000000, 4096, 4) = 0",
            "100 00:00:01.000003 ioctl(5, 0x4020ae46, {slot=1, flags=0x2, guest_phys_addr=0x100000, memory_size=2097152, userspace_addr=0x7f0000000000}) = 0",
        ];
        string[] verbose =
        [
            "100 00:00:01.000001 mmap(NULL, 2097152, 0x3 /* PROT_READ|PROT_WRITE */, 0x22 /* MAP_PRIVATE|MAP_ANONYMOUS */, -1, 0) = 0x7f0000000000",
            "100 00:00:01.000002 madvise(0x7f0000000000, 4096, 0x4 /* MADV_DONTNEED */) = 0",
            "100 00:00:01.000003 ioctl(5, 0x4020ae46 /* KVM_SET_USER_MEMORY_REGION */, {slot=1, flags=0x2 /* KVM_MEM_READONLY */, guest_phys_addr=0x100000, memory_size=2097152, userspace_addr=0x7f0000000000}) = 0",
        ];
        var expected = Strace(named).Events.Select(e => e.Event).ToList();
        Assert.Equal(3, expected.Count);
        Assert.Equal(MemslotFlags.KVM_MEM_READONLY, Assert.IsType<MemslotSet>(expected[2]).Flags);
        Assert.Equal(expected, Strace(raw).Events.Select(e => e.Event));
        Assert.Equal(expected, Strace(verbose).Events.Select(e => e.Event));
    }

    [Fact]
    public void Argument_names_durations_and_string_limits_do_not_change_the_events()
    {
        var r = Strace(
            "100 00:00:01.000001 memfd_create(name=\"guest-r\"..., flags=MFD_CLOEXEC) = 8 <0.000011>",
            "100 00:00:01.000002 mmap(addr=NULL, len=1048576, prot=PROT_READ|PROT_WRITE, flags=MAP_SHARED, fd=8, off=0) = 0x7f81eca2b000 <0.000020>",
            "100 00:00:01.000003 ioctl(fd=5, op=KVM_CREATE_VM, argp=0) = -1 EINVAL (Invalid argument) <0.000004>");
        AllAccounted(r);
        var vma = Assert.IsType<VmaMapped>(r.Events[0].Event);
        Assert.Equal(("/memfd:guest-r", 0x100000UL), (vma.Backing.Path, vma.Range.Size));
        Assert.Equal(1, r.Counted["ioctl KVM_CREATE_VM (EINVAL)"]);
    }

    [Theory]
    [InlineData("16206 00:26:28.940156 ", 1_588_940_156_000L)]
    [InlineData("16206 00:26:28 ", 1_588_000_000_000L)]
    [InlineData("16206 1795307188.940156 ", 1_795_307_188_940_156_000L)]
    [InlineData("[pid 16206] 1795307188.940156 ", 1_795_307_188_940_156_000L)]
    [InlineData("[pid 16206<vmm>] 00:26:28.940156 ", 1_588_940_156_000L)]
    [InlineData("16206<vmm> 00:26:28.940156 [  9] [00007f81ecf4e7bb] ", 1_588_940_156_000L)]
    [InlineData("16206      0.000123 ", 123_000L)]
    [InlineData("16206 00:26:28 (+     0.000123) ", 1_588_000_000_000L)]
    public void Every_leader_form_gives_the_call_and_its_time(string leader, long ns)
    {
        var r = Strace(leader + "munmap(0x7f81eca2b000, 4096) = 0");
        AllAccounted(r);
        Assert.IsType<VmaUnmapped>(Assert.Single(r.Events).Event);
        Assert.Equal(ns, r.Events[0].TsNs);
    }

    [Fact]
    public void Relative_times_add_up_and_no_times_at_all_keep_file_order_with_a_note()
    {
        var rel = Strace("     0.000000 munmap(0x1000, 4096) = 0", "     0.000250 munmap(0x2000, 4096) = 0", "     1.500000 munmap(0x3000, 4096) = 0");
        Assert.Equal([0L, 250_000L, 1_500_250_000L], rel.Events.Select(e => e.TsNs!.Value));

        var bare = Strace("munmap(0x1000, 4096) = 0", "mprotect(0x2000, 4096, PROT_READ) = 0");
        AllAccounted(bare);
        Assert.All(bare.Events, e => Assert.Null(e.TsNs));
        Assert.Contains(bare.Notes, n => n.Contains("no timestamps", StringComparison.Ordinal));
    }

    [Fact]
    public void A_call_split_by_another_thread_is_joined_and_signals_and_exits_are_counted()
    {
        var r = Strace(
            "[pid 16207] 00:26:28.947265 ioctl(9<anon_inode:kvm-vcpu:0>, KVM_RUN, 0 <unfinished ...>",
            "[pid 16206] 00:26:28.947266 mmap(NULL, 8192, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, <unfinished ...>",
            "[pid 16207] 00:26:28.947300 <... ioctl resumed>) = 0 (KVM_EXIT_HLT)",
            "[pid 16206] 00:26:28.947301 <... mmap resumed>0) = 0x7f0000000000",
            "[pid 16207] 00:26:28.947302 --- SIGUSR1 {si_signo=SIGUSR1, si_code=SI_TKILL, si_pid=16206, si_uid=0} ---",
            "[pid 16207] 00:26:28.947303 +++ exited with 0 +++",
            "16208 00:26:28.947304 ioctl(10, KVM_RUN, 0 <unfinished ...>) = ?",
            "16208 00:26:28.947305 +++ killed by SIGKILL +++",
            "strace: Process 16209 attached",
            "16206 00:26:28.947306 exit_group(0) = ?");
        AllAccounted(r);
        var vma = Assert.IsType<VmaMapped>(Assert.Single(r.Events).Event);
        Assert.Equal((0x7f0000000000UL, Perms.R), (vma.Range.Start.Value, vma.Prot));
        Assert.Equal((3, 1, 1, 1, 1), (r.Counted["unfinished (joined with its resumed line)"], r.Counted["signal"], r.Counted["exit"], r.Counted["killed by a signal"], r.Counted["strace message"]));
        Assert.Equal(1, r.Counted["ioctl KVM_RUN -> KVM_EXIT_HLT"]);
        Assert.Equal(1, r.Counted["exit_group (no return)"]);
        Assert.Contains(r.Notes, n => n.Contains("ioctl of pid 16208 never resumed", StringComparison.Ordinal));
    }

    [Fact]
    public void An_ioctl_left_raw_is_counted_as_undecoded_for_the_payload_source()
    {
        var r = Strace("100 00:00:01.000001 ioctl(0x5, 0x4020ae46, 0x7ffd5b0c1e40) = 0", "100 00:00:01.000002 ioctl(5, _IOC(_IOC_WRITE, 0xae, 0x49, 0xa0), 0x7ffd5b0c1e40) = 0");
        AllAccounted(r);
        Assert.Equal(["SET_USER_MEMORY_REGION", "SET_USER_MEMORY_REGION2"], r.Calls.Select(c => c.Name));
        Assert.All(r.Calls, c => Assert.False(c.Decoded));
    }

    [Theory]
    [InlineData("100 00:00:01.000001 ioctl(5, KVM_ARM_VCPU_INIT, {target=KVM_ARM_TARGET_GENERIC_V8, features=[0]}) = 0", Arch.Arm64)]
    [InlineData("100 00:00:01.000001 ioctl(5, KVM_SET_CPUID2, {nent=2, entries=[...]}) = 0", Arch.X86_64)]
    public void Arch_specific_ioctls_name_the_architecture(string line, Arch arch) =>
        Assert.Equal(arch, Strace(line).Host.Arch?.Value);
}
