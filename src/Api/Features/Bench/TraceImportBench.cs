using System.Diagnostics;
using System.Globalization;
using System.Text;
using Audit.Api.Features.Ingest;
using Audit.Projections.Storage;
using Audit.Projections.Temporal;
using Npgsql;

namespace Audit.Api.Features.Bench;

/// <summary>
/// Parse and ingest a synthetic tracefs file of shadow-paging faults in the line mix of the real kvm_pvm
/// capture (about 17 lines a fault there, 18 here: the KVM_RUN ioctl and FPU events around each fault, the
/// guest walk and its paging elements, accessed/dirty bits, the SPTE request and SPTE, a prefetch now and
/// then, an emulated MMIO exit every fourth run, rare MMU-notifier unmaps and markers) beside a small NDJSON
/// file with the memslots, against a raw read of its lines.
/// </summary>
public static class TraceImportBench
{
    public static async Task<Figure> RunAsync(NpgsqlDataSource ds, int lines, Action<string> log, CancellationToken ct)
    {
        var dir = Directory.CreateTempSubdirectory("audit-bench-trace-");
        try
        {
            var (setup, trace) = (Path.Combine(dir.FullName, "setup.ndjson"), Path.Combine(dir.FullName, "trace.txt"));
            await File.WriteAllTextAsync(setup, Setup, ct);
            var written = Write(trace, lines);
            log($"tracefs import: {written:N0} lines ({new FileInfo(trace).Length / 1048576.0:N0} MiB) read raw, then parsed, decided and stored");

            var raw = Stopwatch.StartNew();
            long count = 0;
            foreach (var _ in File.ReadLines(trace))
            {
                count++;
            }

            raw.Stop();

            var parse = Stopwatch.StartNew();
            var parsed = await TraceFiles.ReadAsync(trace, "auto", ct);
            parse.Stop();

            await using var writer = new RunWriter(new EventStore(ds, TimeProvider.System, [new ProjectionStore(ds)]));
            var ours = Stopwatch.StartNew();
            var result = await new IngestFilesHandler(writer).Handle(new IngestFiles([setup, trace], "bench-trace", "auto", "x86-shadow"), ct);
            ours.Stop();
            if (result.Error is { } e)
            {
                throw new InvalidOperationException("the synthetic trace did not import: " + e);
            }

            var run = result.Runs[0];
            var perSec = written / ours.Elapsed.TotalSeconds;
            return new Figure("traceImportLinesPerSec", Math.Round(perSec), 100_000, true, "lines/s",
                $"{written:N0} tracefs lines -> {run.Inputs:N0} events + {run.Stored - run.Inputs:N0} derived in {ours.Elapsed.TotalSeconds:0.0} s; parse alone {parse.Elapsed.TotalSeconds:0.0} s ({parsed.Events.Count:N0} events); raw read of the lines {raw.Elapsed.TotalSeconds:0.00} s");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private const string Setup = """
        {"type":"HostDescribed","arch":"x86_64","kernel":"6.18.0","vendor":"amd","pageSize":4096,"caps":{"tdp":false,"tdpMmu":false}}
        {"type":"VmCreated","vmType":"default"}
        {"type":"VmaMapped","start":"0x7f0000000000","length":"0x40000000","prot":"rw-","flags":[],"backing":{"kind":"anon"}}
        {"type":"MemslotSet","slot":0,"asId":0,"gpa":"0x0","size":"0x40000000","hva":"0x7f0000000000","flags":[],"result":0}

        """;

    /// <summary>Writes about <paramref name="lines"/> lines; returns how many.</summary>
    private static int Write(string path, int lines)
    {
        using var w = new StreamWriter(path, false, new UTF8Encoding(false), 1 << 20);
        w.WriteLine("# tracer: nop");
        w.WriteLine("#");
        var n = 2;
        var rng = new Random(7);
        var ts = 1000.0;
        string Line(string body)
        {
            ts += 0.000001;
            return string.Create(CultureInfo.InvariantCulture, $"             vmm-4242    [001] ...1.  {ts:0.000000}: {body}");
        }

        var gfn = 0x100UL;
        var op = 0;
        while (n < lines)
        {
            // One KVM_RUN of the VMM: its ioctl enter/exit and FPU switches, as the real capture has them.
            w.WriteLine(Line("sys_ioctl(fd: 9, cmd: 0xae80, arg: 0)"));
            w.WriteLine(Line("kvm_fpu: load"));
            n += 2;

            // Locality: mostly the next page, sometimes a jump within the 1 GiB slot.
            gfn = rng.Next(8) == 0 ? (ulong)rng.Next(0x100, 0x3ffff) : (gfn + 1) & 0x3ffff;
            var write = rng.Next(3) == 0;
            w.WriteLine(Line($"kvm_mmu_pagetable_walk: addr {gfn << 12:x} pferr {(write ? 6 : 4)} {(write ? "W|U" : "U")}"));
            w.WriteLine(Line("kvm_mmu_paging_element: pte 2027 level 4"));
            w.WriteLine(Line("kvm_mmu_paging_element: pte 3027 level 3"));
            w.WriteLine(Line("kvm_mmu_paging_element: pte 4027 level 2"));
            w.WriteLine(Line($"kvm_mmu_paging_element: pte {(gfn << 12) | (write ? 0x67UL : 0x27UL):x} level 1"));
            w.WriteLine(Line($"kvm_mmu_set_accessed_bit: gpa {gfn << 12:x}"));
            n += 6;
            if (write)
            {
                w.WriteLine(Line($"kvm_mmu_set_dirty_bit: gpa {gfn << 12:x}"));
                n++;
            }

            w.WriteLine(Line($"kvm_mmu_spte_requested: gfn {gfn:x} pfn {0x2c0000 + gfn:x} level 1"));
            w.WriteLine(Line($"kvm_mmu_set_spte: gfn {gfn:x} spte {((0x2c0000 + gfn) << 12) | (write ? 0xa67UL : 0xa25UL):x} ({(write ? "rwxu" : "r-xu")}) level 1 at 505f2f080"));
            n += 2;
            if (rng.Next(5) == 0)
            {
                // A prefetched neighbour.
                w.WriteLine(Line($"kvm_mmu_set_spte: gfn {gfn + 1:x} spte {((0x2c0001 + gfn) << 12) | 0xa05UL:x} (r-xu) level 1 at 505f2f088"));
                n++;
            }

            if (++op % 4 == 0)
            {
                // An MMIO write, emulated: the fetch walk, the emulation and the exit to the VMM.
                w.WriteLine(Line("kvm_mmu_pagetable_walk: addr 10000 pferr 14 U|F"));
                w.WriteLine(Line("kvm_mmu_paging_element: pte 10007 level 1"));
                w.WriteLine(Line("kvm_emulate_insn: 0:10012:48 89 07 (prot64)"));
                w.WriteLine(Line("vcpu_match_mmio: gva 0xf00000 gpa 0xf00000 Write GPA"));
                w.WriteLine(Line("kvm_mmio: mmio write len 8 gpa 0xf00000 val 0x1000"));
                w.WriteLine(Line("kvm_userspace_exit: reason KVM_EXIT_MMIO (6)"));
                n += 6;
            }

            w.WriteLine(Line("kvm_fpu: unload"));
            w.WriteLine(Line("sys_ioctl -> 0x0"));
            n += 2;
            if (rng.Next(200) == 0)
            {
                var hva = 0x7f0000000000UL + ((ulong)rng.Next(0, 0x3fe00) << 12);
                w.WriteLine(Line($"kvm_unmap_hva_range: mmu notifier unmap range: 0x{hva:x16} -- 0x{hva + 0x200000:x16}"));
                w.WriteLine(Line($"tracing_mark_write: VMM_MARK step {n}"));
                n += 2;
            }
        }

        return n;
    }
}
