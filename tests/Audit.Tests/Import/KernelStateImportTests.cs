using Audit.Api.Features.Ingest;
using Audit.Api.Import;
using Audit.Domain.Events;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Import;

/// <summary>
/// The arm64 stage2_page_tables dump in the form arch/arm64/kvm/ptdump.c prints it through the generic
/// note_page ("0x%016lx-0x%016lx   " "%9lu%c %s", then " %s" per attribute), and /proc/PID/maps.
/// </summary>
public sealed class KernelStateImportTests
{
    /// <summary>One dump line as the kernel prints it.</summary>
    internal static string DumpLine(ulong start, ulong end, string size, int level, string attrs = "") =>
        $"0x{start:x16}-0x{end:x16}   {size,10} {level}{attrs}";

    /// <summary>valid " ", R, W, the XN field, AF, BLK: each printed after a space.</summary>
    internal const string RwxBlock = "   R W px ux  AF BLK";
    internal const string ReadOnlyNoExecPage = "   R   PXNUXN AF    ";

    private static ImportResult Dump(params string[] lines) => Stage2DumpImporter.Read("stage2_page_tables", new StringReader(string.Join('\n', lines)));

    [Fact]
    public void Mapped_runs_become_observations_with_the_level_size_and_permissions_and_empty_runs_are_counted()
    {
        var r = Dump(
            "---[ Guest IPA ]---",
            DumpLine(0, 0x40000000, "1G", 1),
            DumpLine(0x40000000, 0x40400000, "4M", 2, RwxBlock),
            DumpLine(0x40400000, 0x40403000, "12K", 3, ReadOnlyNoExecPage),
            DumpLine(0x40403000, 0x40404000, "4K", 3, "  F                   "),
            "---[ (null) ]---");
        Assert.Null(r.Error);
        Assert.Equal(r.Lines, r.Parsed + r.Counted.Values.Sum());
        var seen = r.Events.Select(e => (Stage2MappingObserved)e.Event).Select(o => (o.Gpa.Value, o.Size, o.Perms, o.MemType)).ToList();
        Assert.Equal(
        [
            (0x40000000UL, 0x200000UL, Perms.R | Perms.W | Perms.X, (Stage2MemType?)null),
            (0x40200000UL, 0x200000UL, Perms.R | Perms.W | Perms.X, null),
            (0x40400000UL, 0x1000UL, Perms.R, null),
            (0x40402000UL, 0x1000UL, Perms.R, null),
        ], seen);
        Assert.Equal(1, r.Counted["empty range (nothing mapped)"]);
        Assert.Equal(1, r.Counted["invalid annotated range"]);
        Assert.True(r.Undated);
        Assert.Equal(Arch.Arm64, r.Host.Arch?.Value);
        Assert.Contains(r.Notes, n => n.Contains("no memory type", StringComparison.Ordinal));
        Assert.Equal("stage2", TraceFiles.Detect(System.Text.Encoding.UTF8.GetBytes("---[ Guest IPA ]---\n" + DumpLine(0, 0x1000, "4K", 3, RwxBlock) + "\n")));
    }

    [Fact]
    public void A_time_line_dates_the_snapshot_and_a_size_that_disagrees_with_its_range_is_a_bad_line()
    {
        var dated = Dump("# time: 1497.900000", DumpLine(0x1000, 0x2000, "4K", 3, RwxBlock));
        Assert.False(dated.Undated);
        Assert.Equal(1_497_900_000_000L, dated.Events[0].TsNs);

        var bad = Dump("---[ Guest IPA ]---", DumpLine(0x1000, 0x3000, "4K", 3, RwxBlock));
        Assert.Equal(2, bad.Error?.Line);
        Assert.Contains("not the 4K", bad.Error!.Reason, StringComparison.Ordinal);

        var unaligned = Dump(DumpLine(0x1000, 0x201000, "2M", 2, RwxBlock));
        Assert.Contains("not made of level-2 blocks", unaligned.Error!.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_maps_file_gives_vmas_with_fewer_facts_and_says_which()
    {
        var r = SmapsImporter.Read("maps", new StringReader(string.Join('\n',
            "7f81ecb2b000-7f81ecd2b000 rw-s 00000000 00:0f 2071                       anon_inode:[kvm-gmem]",
            "7f81ec800000-7f81eca00000 rw-p 00000000 00:00 0 ",
            "7f81ea000000-7f81ea200000 rw-s 00000000 00:01 5                          /memfd:guest-ram (deleted)")));
        Assert.Null(r.Error);
        Assert.Equal("maps", r.Format);
        var vmas = r.Events.Select(e => (VmaMapped)e.Event).ToList();
        Assert.Equal([(BackingKind.GuestMemfd, VmaFlags.VM_SHARED), (BackingKind.Anon, VmaFlags.None), (BackingKind.Shmem, VmaFlags.VM_SHARED)], vmas.Select(v => (v.Backing.Kind, v.Flags)));
        Assert.All(vmas, v => Assert.Null(v.Backing.HostPageSize));
        Assert.Contains(r.Notes, n => n.Contains("no VmFlags", StringComparison.Ordinal));

        var smaps = SmapsImporter.Read("smaps", File.OpenText(Path.Combine(Paths.Samples, "real", "x86-pvm-6.18", "smaps_phase1.txt")));
        Assert.Equal("smaps", smaps.Format);
        Assert.Empty(smaps.Notes);
    }
}
