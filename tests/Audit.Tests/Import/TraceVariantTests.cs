using Audit.Api.Features.Ingest;
using Audit.Api.Import;
using Audit.Domain.Events;

namespace Audit.Tests.Import;

/// <summary>
/// tracefs, trace-cmd report and perf script in their other forms (Documentation/trace/ftrace.rst,
/// trace-cmd-report.1, tracecmd/trace-read.c), and what their events say about the host.
/// </summary>
public sealed class TraceVariantTests
{
    private const string Requested = "kvm_mmu_spte_requested: gfn 10 pfn 23dbd0 level 1";
    private const string SetSpte = "kvm_mmu_set_spte: gfn 10 spte 23dbd0a25 (r-xu) level 1 at 3e70c4080";

    private static ImportResult Ftrace(params string[] lines) => FtraceImporter.Read("t.txt", new StringReader(string.Join('\n', lines)));

    private static ImportResult Perf(params string[] lines) => PerfImporter.Read("p.txt", new StringReader(string.Join('\n', lines)));

    private static void OneFault(ImportResult r, long ts)
    {
        Assert.Null(r.Error);
        Assert.Equal(r.Lines, r.Parsed + r.Counted.Values.Sum());
        Assert.Equal(0x10000UL, Assert.IsType<GuestFaulted>(r.Events[0].Event).Gpa.Value);
        Assert.IsType<Stage2MappingObserved>(r.Events[1].Event);
        Assert.Equal(ts, r.Events[0].TsNs);
    }

    [Fact]
    public void Trace_pipe_lines_without_a_header_are_events()
    {
        OneFault(Ftrace($"             vmm-16206   [000] ...1.  1497.886139: {Requested}", $"             vmm-16206   [000] ...1.  1497.886141: {SetSpte}"), 1_497_886_141_000);
        Assert.Equal("ftrace", TraceFiles.Detect(System.Text.Encoding.UTF8.GetBytes($"             vmm-16206   [000] ...1.  1497.886139: {Requested}\n")));
    }

    [Fact]
    public void The_latency_format_with_its_irq_flags_column_and_microsecond_times_is_read()
    {
        var r = Ftrace(
            "# tracer: nop",
            "#                    _------=> CPU#",
            "#                   / _-----=> irqs-off/BH-disabled",
            "#  cmd     pid      |||||| time  |   caller",
            $"     vmm-16206     0d..1.  123us : {Requested}",
            $"     vmm-16206     0d..1.  125us+: {SetSpte}");
        OneFault(r, 125_000);
        Assert.Equal("ftrace", TraceFiles.Detect(System.Text.Encoding.UTF8.GetBytes($"     vmm-16206     0d..1.  123us : {Requested}\n")));

        // trace-cmd report -l: the same flags column, with seconds.
        OneFault(Ftrace($"     vmm-16206   0d..1. 1497.886139: {Requested}", $"     vmm-16206   0d..1. 1497.886141: {SetSpte}"), 1_497_886_141_000);
    }

    [Fact]
    public void Trace_cmd_report_raw_full_timestamps_and_ts_diff_are_read()
    {
        var r = Ftrace(
            "cpus=2",
            "Linux host 6.12.9-arch1 #1 SMP PREEMPT_DYNAMIC Sat, 11 Jan 2025 10:00:00 +0000 x86_64",
            "             vmm-16206 [000]-0x1 1497.886139123: kvm_mmu_spte_requested: gfn=16 pfn=2346960 level=1",
            "             vmm-16206 [000]-0x1 1497.886141456: kvm_mmu_set_spte:     gfn=16 spte=9626979877 sptep=16759128192 level=1 r=1 x=1 u=1",
            "             vmm-16206 [000] ...1. 1497.886150000: (+8544)   kvm_mmu_get_page:     sp gen 0 gfn 1 l4 8-byte q0 wux !nxe ad root 0 sync");
        OneFault(r, 1_497_886_141_456);
        Assert.Equal(("6.12.9-arch1", Arch.X86_64, false), (r.Host.Kernel?.Value, r.Host.Arch?.Value, r.Host.Tdp?.Value));
    }

    [Fact]
    public void Raw_fields_of_trace_cmd_report_R_are_decimal_unless_they_say_0x()
    {
        var r = Ftrace(
            "       vcpu0-2000  [001]-0x1 100.000001: kvm_page_fault:       vcpu_id=0 guest_rip=18446744071562067968 fault_address=1052672 error_code=6",
            "       vcpu0-2000  [001]-0x1 100.000002: kvm_unmap_hva_range:  start=140195997417472 end=140195999514624");
        Assert.Null(r.Error);
        var fault = Assert.IsType<GuestFaulted>(r.Events[0].Event);
        Assert.Equal((0x101000UL, Access.Write), (fault.Gpa.Value, fault.Access));
        var unmap = Assert.IsType<MmuNotifierInvalidated>(r.Events[1].Event);
        Assert.Equal((0x7f81eca00000UL, 0x7f81ecc00000UL), (unmap.Start.Value, unmap.End.Value));
    }

    [Fact]
    public void Cpus_read_one_after_another_are_sorted_by_time_and_lost_events_are_counted()
    {
        var r = Ftrace(
            $"             vmm-16206   [000] ...1.  1497.886139: {Requested}",
            $"             vmm-16206   [000] ...1.  1497.886141: {SetSpte}",
            "CPU:1 [LOST 12 EVENTS]",
            "             vmm-16207   [001] ...1.  1497.880000: kvm_mmu_spte_requested: gfn 20 pfn 23dbd0 level 1",
            "             vmm-16207   [001] ...1.  1497.880001: kvm_mmu_set_spte: gfn 20 spte 23dbd0a25 (r-xu) level 1 at 3e70c4080",
            "CPU:0 [12 EVENTS DROPPED]");
        Assert.Null(r.Error);
        Assert.Equal([0x20000UL, 0x20000UL, 0x10000UL, 0x10000UL], r.Events.Select(e => e.Event switch { GuestFaulted f => f.Gpa.Value, Stage2MappingObserved o => o.Gpa.Value, _ => 0UL }));
        Assert.Equal(r.Events.Select(e => e.TsNs).Order(), r.Events.Select(e => e.TsNs));
        Assert.Equal(2, r.Counted["lost-events line (the kernel dropped events here: faults may be missing)"]);
        Assert.Contains(r.Notes, n => n.Contains("out of time order", StringComparison.Ordinal));
    }

    [Fact]
    public void Perf_script_field_sets_and_its_header_are_read()
    {
        var r = Perf(
            "# ========",
            "# captured on    : Fri Dec  4 00:26:28 2026",
            "# os release : 6.16.3-200.fc42.x86_64",
            "# arch : x86_64",
            "# cpuid : AuthenticAMD,25,33,0",
            "# ========",
            "#",
            $"  1498.399294: kvmmmu:{Requested}",
            $"  1498.399295: kvmmmu:{SetSpte}",
            $"vmm 16267/16268 kvmmmu:{Requested}",
            $"vmm 16267/16268 kvmmmu:{SetSpte}");
        Assert.Null(r.Error);
        Assert.Equal(4, r.Events.Count);
        Assert.Equal(1_498_399_295_000, r.Events[3].TsNs);
        Assert.Equal(("6.16.3-200.fc42.x86_64", Arch.X86_64, X86Vendor.Amd), (r.Host.Kernel?.Value, r.Host.Arch?.Value, r.Host.Vendor?.Value));
    }

    [Fact]
    public void Perf_script_callchains_under_each_event_are_counted()
    {
        var r = Perf(
            $"vmm 16267 [000]  1498.399294: kvmmmu:{Requested}",
            "\tffffffffc0a1b2c3 kvm_mmu_spte_requested+0x1b3 ([kvm])",
            "\tffffffffc0a1c000 direct_page_fault+0x2a0 ([kvm])",
            "",
            $"vmm 16267 [000]  1498.399295: kvmmmu:{SetSpte}",
            "\tffffffffc0a1b2c3 mmu_set_spte+0x2b3 ([kvm])");
        OneFault(r, 1_498_399_295_000);
        Assert.Equal(3, r.Counted["callchain frame (perf script -g)"]);
    }

    [Theory]
    [InlineData("kvm_exit: vcpu 0 reason EPT_VIOLATION rip 0xffffffff81000000 info1 0x0000000000000181 info2 0x0000000000000000 intr_info 0x00000000 error_code 0x00000000", X86Vendor.Intel, true)]
    [InlineData("kvm_exit: vcpu 0 reason npf rip 0xffffffff81000000 info1 0x0000000100000014 info2 0x00000000fee00000 intr_info 0x00000000 error_code 0x00000000", X86Vendor.Amd, true)]
    [InlineData("kvm_exit: vcpu 0 reason HLT rip 0xffffffff81000000 info1 0x0000000000000000 info2 0x0000000000000000 intr_info 0x00000000 error_code 0x00000000", X86Vendor.Intel, null)]
    [InlineData("kvm_exit: exit_reason=48 guest_rip=0xffffffff81000000 isa=1 vcpu_id=0", X86Vendor.Intel, null)]
    [InlineData("kvm_nested_vmrun: rip: 0x0000000000001000 vmcb: 0x0000000106ef2000 nrip: 0x0000000000000000 int_ctl: 0x00000000 event_inj: 0x00000000 npt: on", X86Vendor.Amd, null)]
    public void Exit_reasons_and_vendor_events_name_vmx_or_svm(string body, X86Vendor vendor, bool? tdp)
    {
        var r = Ftrace($"       vcpu0-2000    [001] d..1.   100.000001: {body}");
        Assert.Null(r.Error);
        Assert.Equal((Arch.X86_64, vendor, tdp), (r.Host.Arch?.Value, r.Host.Vendor?.Value, r.Host.Tdp?.Value));
    }

    [Fact]
    public void Tdp_mmu_changes_and_arm64_faults_name_the_paging_and_the_architecture()
    {
        var tdp = Ftrace("       vcpu0-2000    [001] ...1.   100.000001: kvm_tdp_mmu_spte_changed: as id 0 gfn 100 level 1 old_spte 5a0 new_spte 6000000123456b77");
        Assert.Equal((true, true, Arch.X86_64), (tdp.Host.Tdp?.Value, tdp.Host.TdpMmu?.Value, tdp.Host.Arch?.Value));

        var arm = Ftrace("       vcpu0-2000    [001] ...1.   100.000001: kvm_guest_fault: ipa 0x40000200000, esr 0x93c08007, far 0x0, pc 0xffff800080001000");
        Assert.Equal(Arch.Arm64, arm.Host.Arch?.Value);
        Assert.IsType<GuestFaulted>(Assert.Single(arm.Events).Event);

        // A direct page may be TDP or a non-paging guest under shadow paging: an indirect one decides.
        var shadow = Ftrace(
            "       vcpu0-2000    [001] ...1.   100.000001: kvm_mmu_get_page: sp gen 0 gfn 0 l4 8-byte q0 direct wux nxe ad root 0 sync",
            "       vcpu0-2000    [001] ...1.   100.000002: kvm_mmu_get_page: [FAILED TO PARSE] mmu_valid_gen=0 gfn=1 role=14084 root_count=0 unsync=0 created=1");
        Assert.False(shadow.Host.Tdp?.Value);
    }

    [Fact]
    public void Inference_says_what_it_read_and_what_it_assumed()
    {
        var clues = new HostClues();
        clues.SawArch(Arch.X86_64, "the x86 event kvm_fpu (t.txt:3)");
        clues.SawTdp(false, "kvm_mmu_get_page of an indirect shadow page (t.txt:9)");
        var host = clues.Infer(out var summary)!;
        Assert.Equal((Arch.X86_64, false, HostClues.NewestModelledRelease()), (host.Arch, host.Caps.Tdp, host.Kernel));
        Assert.Contains("x86-shadow", summary, StringComparison.Ordinal);
        Assert.Contains("t.txt:9", host.Inferred, StringComparison.Ordinal);
        Assert.Contains("ASSUMED kernel " + HostClues.NewestModelledRelease(), host.Inferred, StringComparison.Ordinal);

        Assert.Null(new HostClues().Infer(out _));
    }
}
