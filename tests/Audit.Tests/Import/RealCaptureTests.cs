using Audit.Domain.Events;
using Audit.Projections.Storage;
using Audit.Tests.Cli;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Import;

/// <summary>The real kvm_pvm capture (strace and tracefs of one VM) imported as one run.</summary>
public sealed class RealCaptureTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private static string Real(string name) => Path.Combine(Paths.Samples, "real", "x86-pvm-6.18", name);

    [Fact]
    public async Task Strace_and_trace_import_as_one_run_and_every_line_is_accounted_for()
    {
        var r = await CliRunner.RunAsync(ConnectionString, "ingest", Real("strace.txt"), Real("trace.txt"), "--run", "pvm-counted", "--policy", "x86-shadow");
        Assert.True(r.Exit == 0, r.Err);

        // The summary accounts for every line: lines = lines that gave events + lines counted by kind.
        foreach (var (file, total) in new[] { ("strace.txt", File.ReadAllLines(Real("strace.txt")).Length), ("trace.txt", File.ReadAllLines(Real("trace.txt")).Length) })
        {
            Assert.Contains($"{file} (", r.Out, StringComparison.Ordinal);
            Assert.Contains($": {total} lines,", r.Out, StringComparison.Ordinal);
        }

        var counts = new Dictionary<string, long>();
        await foreach (var e in Store().ReadAsync("pvm-counted"))
        {
            counts[e.Type] = counts.GetValueOrDefault(e.Type) + 1;
        }

        Assert.Equal(8, counts["memslot_set"]);
        Assert.Equal(17, counts["vma_mapped"]);
        Assert.True(counts["vma_unmapped"] >= 10 && counts["vma_protection_changed"] == 5 && counts["vma_advised"] == 6);
        // 108 faults that set an SPTE, and 4 whose guest walk ended in KVM_RUN returning -EFAULT.
        Assert.Equal(112, counts["guest_faulted"]);
        Assert.Equal(108, counts["stage2_mapping_observed"]);
        Assert.Equal(36, counts["mmu_notifier_invalidated"]);
        Assert.Equal(4, counts["memory_fault_exit_observed"]);
        Assert.Equal(3, counts["guest_memfd_fallocated"]);
    }

    [Fact]
    public async Task The_model_agrees_with_every_observed_spte_it_could_decide_and_says_why_for_the_rest()
    {
        Assert.Equal(0, (await CliRunner.RunAsync(ConnectionString, "ingest", Real("strace.txt"), Real("trace.txt"), "--run", "pvm-checked", "--policy", "x86-shadow")).Exit);
        var divergences = new List<DivergenceFound>();
        var mapped = 0;
        await foreach (var e in Store().ReadAsync("pvm-checked"))
        {
            switch (e.Event)
            {
                case DivergenceFound d:
                    divergences.Add(d);
                    break;
                case FaultResolved { Outcome: FaultOutcome.Mapped or FaultOutcome.Kept }:
                    mapped++;
                    break;
            }
        }

        // Every SPTE the model mapped matches the kernel's permissions and level.
        Assert.Equal(86, mapped);
        Assert.DoesNotContain(divergences, d => d.Model.StartsWith("WB", StringComparison.Ordinal));

        // The rest fall in the memslots strace could not decode (KVM_SET_USER_MEMORY_REGION2 at 0x400000-0x9fffff),
        // or is the -EFAULT exit in one of them; each names what the model decided there and why. The three
        // -EFAULTs of host mappings (write after mprotect, munmapped hole, munmapped slot) agree with the model.
        var spte = divergences.Where(d => d.Kernel.Contains(" at 0x", StringComparison.Ordinal) && !d.Kernel.Contains("-EFAULT", StringComparison.Ordinal)).ToList();
        Assert.Equal(22, spte.Count);
        Assert.All(spte, d => Assert.Contains("no memslot covers the gpa", d.Model, StringComparison.Ordinal));
        Assert.All(spte, d =>
        {
            var gpa = Convert.ToUInt64(d.Kernel.Split(" at ")[1].Trim()[2..], 16);
            Assert.InRange(gpa, 0x400000UL, 0x9fffffUL);
        });
        var efault = Assert.Single(divergences, d => d.Kernel.Contains("-EFAULT", StringComparison.Ordinal));
        Assert.Contains("at 0x400000", efault.Kernel, StringComparison.Ordinal);
        Assert.Equal(23, divergences.Count);
    }

    [Fact]
    public async Task With_the_bpftrace_log_the_undecoded_memslots_are_filled_and_only_reasoned_divergences_remain()
    {
        var files = new[] { "strace.txt", "bpftrace_ioctls.txt", "trace.txt", "smaps_phase1.txt" };
        var r = await CliRunner.RunAsync(ConnectionString, ["ingest", .. files.Select(Real), "--run", "pvm-filled", "--policy", "x86-shadow"]);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("bpftrace_ioctls.txt filled 8 undecoded ioctls of strace.txt (4 host addresses translated", r.Out, StringComparison.Ordinal);
        foreach (var f in files)
        {
            Assert.Contains($"{f} (", r.Out, StringComparison.Ordinal);
            Assert.Contains($": {File.ReadAllLines(Real(f)).Length} lines,", r.Out, StringComparison.Ordinal);
        }

        var counts = new Dictionary<string, long>();
        var divergences = new List<DivergenceFound>();
        await foreach (var e in Store().ReadAsync("pvm-filled"))
        {
            counts[e.Type] = counts.GetValueOrDefault(e.Type) + 1;
            if (e.Event is DivergenceFound d)
            {
                divergences.Add(d);
            }
        }

        // The 3 REGION2 memslots and their delete, the 2 guest_memfds and the 2 attribute calls join the 8 decoded memslots.
        Assert.Equal(12, counts["memslot_set"]);
        Assert.Equal(2, counts["guest_memfd_created"]);
        Assert.Equal(2, counts["memory_attributes_set"]);
        Assert.Equal(112, counts["guest_faulted"]);

        // Every SPTE and -EFAULT agrees but three, each with both sides stated: this kernel lacks
        // KVM_SET_MEMORY_ATTRIBUTES (ENOTTY, no CONFIG_KVM_GENERIC_MEMORY_ATTRIBUTES for a default VM). After a
        // punched hole it re-allocates the shared guest_memfd page, and so does the model (kvm_gmem_get_folio).
        Assert.DoesNotContain(divergences, d => d.Model.Contains("no memslot covers the gpa", StringComparison.Ordinal));
        Assert.Equal(2, divergences.Count(d => d.Kernel == "KVM_SET_MEMORY_ATTRIBUTES returned -ENOTTY"));
        Assert.DoesNotContain(divergences, d => d.Model.Contains("a hole was punched", StringComparison.Ordinal));

        // One the model cannot explain: after the VMM munmaps the guest_memfd's userspace mapping, the next fault
        // at 0x400000 of that MMAP guest_memfd slot ends in a memory-fault exit; the model maps from the file.
        Assert.Single(divergences, d => d.Kernel.StartsWith("KVM_RUN returned -EFAULT as a memory fault at 0x400000", StringComparison.Ordinal));
        Assert.True(divergences.Count == 3, string.Join("\n", divergences.Select(d => $"{d.InputSeq}: model {d.Model} | kernel {d.Kernel}")));
    }

    [Fact]
    public async Task A_trace_whose_clock_cannot_be_aligned_is_refused_with_the_reason()
    {
        var strace = Path.Combine(Path.GetTempPath(), $"s-{Guid.NewGuid():N}.txt");
        await File.WriteAllLinesAsync(strace, ["1 00:00:01.000000 munmap(0x7f0000000000, 4096) = 0"]);
        try
        {
            var r = await CliRunner.RunAsync(ConnectionString, "ingest", strace, Real("trace.txt"), "--run", "x", "--policy", "x86-shadow");
            Assert.Equal(2, r.Exit);
            Assert.Contains("no mmap result appears in both", r.Err, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(strace);
        }
    }
}
