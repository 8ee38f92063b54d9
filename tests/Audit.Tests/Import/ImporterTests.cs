using Audit.Api.Import;
using Audit.Domain.Events;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Import;

/// <summary>The strace and tracefs parsers on real lines from the shared capture, and on broken ones.</summary>
public sealed class ImporterTests
{
    private static string Real(string name) => Path.Combine(Paths.Samples, "real", "x86-pvm-6.18", name);

    private static ImportResult Strace(params string[] lines) => StraceImporter.Read("s.txt", new StringReader(string.Join('\n', lines)));

    private static ImportResult Ftrace(params string[] lines) => FtraceImporter.Read("t.txt", new StringReader(string.Join('\n', lines)));

    [Fact]
    public void Strace_mmap_memslot_and_guest_memfd_lines_become_events()
    {
        var r = Strace(
            "16206 00:26:28.939541 mmap(NULL, 4194304, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, -1, 0) = 0x7f81ec800000",
            "16206 00:26:28.938754 mmap(0x7f81ecd54000, 1400832, PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE, 3, 0x26000) = 0x7f81ecd54000",
            "16206 00:26:28.939772 ioctl(5, KVM_SET_USER_MEMORY_REGION, {slot=0, flags=0, guest_phys_addr=0, memory_size=2097152, userspace_addr=0x7f81ec800000}) = 0",
            "16206 00:26:28.940085 ioctl(5, KVM_SET_USER_MEMORY_REGION, {slot=5, flags=KVM_MEM_READONLY, guest_phys_addr=0xa00000, memory_size=2097152, userspace_addr=0x7f81eb800000}) = 0",
            "16206 00:26:28.939868 ioctl(5, _IOC(_IOC_READ|_IOC_WRITE, 0xae, 0xd4, 0x40), 0x7ffc15fe4540) = 6",
            "16206 00:26:28.945772 fallocate(6, FALLOC_FL_KEEP_SIZE|FALLOC_FL_PUNCH_HOLE, 0, 8192) = 0",
            "16206 00:26:28.939347 ioctl(4, KVM_CREATE_VM, 0) = 5",
            "16206 00:26:28.943424 ioctl(9, KVM_RUN, 0) = -1 EFAULT (Bad address)");
        Assert.Null(r.Error);
        var e = r.Events.Select(x => x.Event).ToList();
        var anon = Assert.IsType<VmaMapped>(e[0]);
        Assert.Equal((0x7f81ec800000UL, 0x400000UL, BackingKind.Anon, Perms.R | Perms.W), (anon.Range.Start.Value, anon.Range.Size, anon.Backing.Kind, anon.Prot));
        Assert.IsType<VmaUnmapped>(e[1]);
        Assert.Equal(BackingKind.File, Assert.IsType<VmaMapped>(e[2]).Backing.Kind);
        var slot5 = Assert.IsType<MemslotSet>(e[4]);
        Assert.Equal((5, 0xa00000UL, MemslotFlags.KVM_MEM_READONLY, (int?)0), (slot5.Slot, slot5.Gpa.Value, slot5.Flags, slot5.Result));
        var punch = Assert.IsType<GuestMemfdFallocated>(e[5]);
        Assert.True(punch.PunchHole);
        Assert.Equal(VmType.Default, Assert.IsType<VmCreated>(e[6]).VmType);
        Assert.Equal(1, r.Counted["KVM_CREATE_GUEST_MEMFD (payload not decoded by strace)"]);
        Assert.Equal(1, r.Counted["ioctl KVM_RUN (EFAULT)"]);
        Assert.Equal(r.Lines, r.Parsed + r.Counted.Values.Sum());
    }

    [Fact]
    public void A_set_spte_after_its_request_is_a_fault_and_an_observation_and_one_without_is_a_prefetch()
    {
        var r = Ftrace(
            "# tracer: nop",
            "             vmm-16206   [000] ...1.  1497.886139: kvm_mmu_spte_requested: gfn 10 pfn 23dbd0 level 1",
            "             vmm-16206   [000] ...1.  1497.886141: kvm_mmu_set_spte: gfn 10 spte 23dbd0a25 (r-xu) level 1 at 3e70c4080",
            "             vmm-16206   [000] ...1.  1497.886150: kvm_mmu_set_spte: gfn 11 spte 23dbd1a25 (r-xu) level 1 at 3e70c4088",
            "             vmm-16206   [000] .....  1497.884841: kvm_unmap_hva_range: mmu notifier unmap range: 0x007f81eca00000 -- 0x007f81ecc00000",
            "             vmm-16206   [000] .....  1497.884125: sys_mmap(addr: 0, len: 0x3000, prot: 3, flags: 0x22, fd: 0xffffffff, off: 0)",
            "             vmm-16206   [000] .....  1497.884126: sys_mmap -> 0x7f81ecd2b000");
        Assert.Null(r.Error);
        var fault = Assert.IsType<GuestFaulted>(r.Events[0].Event);
        Assert.Equal((0x10000UL, Access.Read), (fault.Gpa.Value, fault.Access));
        var seen = Assert.IsType<Stage2MappingObserved>(r.Events[1].Event);
        Assert.Equal((0x10000UL, 0x1000UL, Perms.R | Perms.X, (Stage2MemType?)Stage2MemType.WB, "0x23dbd0a25"), (seen.Gpa.Value, seen.Size, seen.Perms, seen.MemType, seen.Raw));
        var n = Assert.IsType<MmuNotifierInvalidated>(r.Events[2].Event);
        Assert.Equal((0x7f81eca00000UL, 0x7f81ecc00000UL), (n.Start.Value, n.End.Value));
        Assert.Equal(1, r.Counted["kvm_mmu_set_spte without a request (prefetch)"]);
        Assert.Contains(("mmap:0x7f81ecd2b000", 1_497_884_126_000L), r.ClockMatches);
    }

    [Fact]
    public void The_options_fields_rendering_gives_the_memory_fault_exit_reason()
    {
        var r = FtraceImporter.Read("f.txt", File.OpenText(Real("trace_fields.txt")));
        Assert.Null(r.Error);
        Assert.Single(r.Events, e => e.Event is MemoryFaultExitObserved);
        Assert.Equal(r.Lines, r.Parsed + r.Counted.Values.Sum());
    }

    public static TheoryData<string, int> Mutations()
    {
        var data = new TheoryData<string, int>();
        foreach (var f in new[] { "strace.txt", "trace.txt" })
        {
            for (var seed = 1; seed <= 6; seed++)
            {
                data.Add(f, seed);
            }
        }

        return data;
    }

    /// <summary>Truncated, garbled and shuffled lines end in a FILE:LINE error or parse; nothing escapes as an exception.</summary>
    [Theory]
    [MemberData(nameof(Mutations))]
    public void Mutated_real_traces_end_in_a_clean_file_line_error_never_an_exception(string name, int seed)
    {
        var rng = new Random(seed);
        var lines = File.ReadAllLines(Real(name)).ToList();
        var victim = 15 + rng.Next(lines.Count - 15);
        var original = lines[victim];
        lines[victim] = (seed % 3) switch
        {
            0 => original[..Math.Max(1, rng.Next(original.Length))],
            1 => new string(original.Select(c => rng.Next(8) == 0 ? (char)rng.Next(33, 126) : c).ToArray()),
            _ => "\u0000garbage \u00ff" + original[(original.Length / 2)..],
        };
        if (seed > 3)
        {
            (lines[victim], lines[victim - 1]) = (lines[victim - 1], lines[victim]);
        }

        var text = new StringReader(string.Join('\n', lines));
        var r = name == "strace.txt" ? StraceImporter.Read(name, text) : FtraceImporter.Read(name, text);
        if (r.Error is { } e)
        {
            Assert.Equal(name, e.File);
            Assert.InRange(e.Line, 1, lines.Count);
            Assert.StartsWith($"{name}:{e.Line}: ", e.ToString(), StringComparison.Ordinal);
        }
        else
        {
            Assert.Equal(r.Lines, r.Parsed + r.Counted.Values.Sum());
        }
    }
}
