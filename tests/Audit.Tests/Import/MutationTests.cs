using Audit.Api.Features.Ingest;
using Audit.Api.Import;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Import;

/// <summary>Broken captures (lines cut short, swapped, dropped, garbage inserted) end in FILE:LINE errors or are read; never an exception.</summary>
public sealed class MutationTests
{
    private static string Real(string name) => Path.Combine(Paths.Samples, "real", "x86-pvm-6.18", name);

    public static TheoryData<string, string> Files() => new()
    {
        { "strace.txt", "strace" },
        { "trace.txt", "ftrace" },
        { "trace_fields.txt", "ftrace" },
        { "perf_script.txt", "perf" },
        { "bpftrace_ioctls.txt", "bpftrace" },
        { "smaps_phase1.txt", "smaps" },
    };

    private static ImportResult Read(string format, string name, IEnumerable<string> lines)
    {
        var text = new StringReader(string.Join('\n', lines));
        return format switch
        {
            "strace" => StraceImporter.Read(name, text),
            "ftrace" => FtraceImporter.Read(name, text),
            "perf" => PerfImporter.Read(name, text),
            "bpftrace" => BpftraceImporter.Read(name, text),
            "smaps" => SmapsImporter.Read(name, text),
            _ => Stage2DumpImporter.Read(name, text),
        };
    }

    /// <summary>One seeded mutation of the lines, and what it did.</summary>
    private static (List<string> Lines, string What) Mutate(List<string> lines, Random rng)
    {
        var copy = new List<string>(lines);
        var i = rng.Next(copy.Count);
        switch (rng.Next(4))
        {
            case 0:
                copy[i] = copy[i][..rng.Next(copy[i].Length + 1)];
                return (copy, $"line {i + 1} cut short");
            case 1 when i + 1 < copy.Count:
                (copy[i], copy[i + 1]) = (copy[i + 1], copy[i]);
                return (copy, $"lines {i + 1} and {i + 2} swapped");
            case 2:
                copy.RemoveAt(i);
                return (copy, $"line {i + 1} dropped");
            default:
                copy.Insert(i, new string((char)rng.Next(33, 127), rng.Next(1, 40)) + " 0x" + rng.Next().ToString("x"));
                return (copy, $"garbage at line {i + 1}");
        }
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Two_hundred_mutations_of_a_real_capture_end_in_a_located_error_or_a_read(string file, string format)
    {
        var lines = File.ReadAllLines(Real(file)).ToList();
        var rng = new Random(20);
        var errors = 0;
        for (var n = 0; n < 200; n++)
        {
            var (mutated, what) = Mutate(lines, rng);
            var r = Read(format, file, mutated);
            if (r.Error is { } e)
            {
                errors++;
                Assert.True(e.Line >= 1 && e.Line <= mutated.Count, $"{what}: error at line {e.Line}");
                Assert.StartsWith($"{file}:{e.Line}: ", e.ToString(), StringComparison.Ordinal);
            }
            else
            {
                Assert.Equal(r.Lines, r.Parsed + r.Counted.Values.Sum());
            }
        }

        // Garbage lines are a quarter of the mutations: some must be refused.
        Assert.True(errors > 0, "no mutation was refused");
    }

    [Fact]
    public void Mutations_of_a_stage2_dump_end_in_a_located_error_or_a_read()
    {
        var lines = new List<string>
        {
            "---[ Guest IPA ]---",
            KernelStateImportTests.DumpLine(0, 0x40000000, "1G", 1),
            KernelStateImportTests.DumpLine(0x40000000, 0x40400000, "4M", 2, KernelStateImportTests.RwxBlock),
            KernelStateImportTests.DumpLine(0x40400000, 0x40403000, "12K", 3, KernelStateImportTests.ReadOnlyNoExecPage),
            "---[ (null) ]---",
        };
        var rng = new Random(5);
        for (var n = 0; n < 200; n++)
        {
            var (mutated, what) = Mutate(lines, rng);
            var r = Read("stage2", "stage2_page_tables", mutated);
            Assert.True(r.Error is null || (r.Error.Line >= 1 && r.Error.Line <= mutated.Count), what);
        }
    }

    [Theory]
    [InlineData("strace", "16206 00:26:28.940156 mmap(NULL, 1048576, PROT_READ|PROT_WR")]
    [InlineData("strace", "16206 00:26:28.940156 mmap(NULL, 1048576, PROT_READ, MAP_SHARED, 8, 0) = 0xZZ")]
    [InlineData("ftrace", "             vmm-16206   [000] ...1.  1497.88")]
    [InlineData("ftrace", "             vmm-16206   [000] ...1.  1497.886141: kvm_mmu_set_spte: gfn 10")]
    [InlineData("perf", "             vmm 16267 [000]  1498.39")]
    public void A_bad_line_after_good_ones_is_named_by_file_and_line(string format, string bad)
    {
        string[] good = format switch
        {
            "strace" => ["16206 00:26:28.940100 munmap(0x7f0000000000, 4096) = 0"],
            "perf" => ["             vmm 16267 [000]  1498.398520:        kvm:kvm_update_master_clock: masterclock 0 hostclock 0x1 offsetmatched 0"],
            _ => ["# tracer: nop", "             vmm-16206   [000] ...1.  1497.886139: kvm_mmu_spte_requested: gfn 10 pfn 23dbd0 level 1"],
        };
        var r = Read(format, "f.txt", [.. good, bad]);
        Assert.Equal(good.Length + 1, r.Error?.Line);
        Assert.StartsWith($"f.txt:{good.Length + 1}: ", r.Error!.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void A_capture_cut_anywhere_after_its_first_lines_is_still_recognised(string file, string format)
    {
        var bytes = File.ReadAllBytes(Real(file));
        var firstLines = 0;
        for (var newlines = 0; newlines < 12; firstLines++)
        {
            newlines += bytes[firstLines] == (byte)'\n' ? 1 : 0;
        }

        var rng = new Random(7);
        for (var n = 0; n < 20; n++)
        {
            Assert.Equal(format, TraceFiles.Detect(bytes[..rng.Next(firstLines, bytes.Length)]));
        }
    }
}
