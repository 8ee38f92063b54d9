using System.Text.RegularExpressions;
using Audit.Domain.Events;

namespace Audit.Api.Import;

public static partial class FtraceImporter
{
    /// <summary>kvm_exit's reason: VMX prints its exit names in capitals (EPT_VIOLATION), SVM in lower case (npf).</summary>
    [GeneratedRegex(@"reason (?<reason>[A-Za-z_0-9]+)")]
    private static partial Regex ExitReasonRx();

    [GeneratedRegex(@"\bisa[ =](?<isa>\d)")]
    private static partial Regex IsaRx();

    /// <summary>kvm_mmu_get_page's role: the raw word (role=14084) or the printk form ("q0 direct wux").</summary>
    [GeneratedRegex(@"role[ =](?<role>0x[0-9a-f]+|\d+)")]
    private static partial Regex RoleRx();

    [GeneratedRegex(@"\bq\d+(?<direct> direct)?\s")]
    private static partial Regex QuadrantRx();

    /// <summary>Events only the x86 KVM module defines (arch/x86/kvm/trace.h, mmutrace.h).</summary>
    private static readonly HashSet<string> X86Events = new(StringComparer.Ordinal)
    {
        "kvm_page_fault", "kvm_cpuid", "kvm_msr", "kvm_cr", "kvm_pio", "kvm_fpu", "kvm_emulate_insn", "kvm_inj_exception",
        "kvm_inj_virq", "kvm_apic", "kvm_apic_accept_irq", "kvm_apic_ipi", "kvm_write_tsc_offset", "kvm_update_master_clock",
        "kvm_track_tsc", "kvm_pvclock_update", "kvm_hypercall", "kvm_pic_set_irq", "kvm_ioapic_set_irq", "kvm_eoi", "kvm_pv_eoi",
        "kvm_ple_window_update", "kvm_smm_transition", "kvm_apicv_inhibit_changed", "kvm_apicv_accept_irq", "kvm_mmio_emulate_insn",
    };

    /// <summary>Events only the arm64 KVM module defines (arch/arm64/kvm/trace_arm.h, trace_handle_exit.h).</summary>
    private static readonly HashSet<string> Arm64Events = new(StringComparer.Ordinal)
    {
        "kvm_guest_fault", "kvm_access_fault", "kvm_handle_sys_reg", "kvm_sys_access", "kvm_wfx_arm64", "kvm_hvc_arm64",
        "kvm_mmio_emulate", "kvm_mmio_nisv", "kvm_set_way_flush", "kvm_toggle_cache", "kvm_timer_update_irq", "kvm_timer_save_state",
        "kvm_timer_restore_state", "kvm_timer_hrtimer_expire", "kvm_timer_emulate", "kvm_get_timer_map", "kvm_arm_set_dreg32",
        "kvm_arm_set_regset", "kvm_arm_setup_debug", "kvm_arm_clear_debug", "kvm_set_guest_debug", "kvm_forward_sysreg_trap",
        "kvm_nested_eret", "kvm_inject_nested_exception", "trap_reg", "vgic_update_irq_pending",
    };

    /// <summary>Events only AMD's SVM defines.</summary>
    private static readonly HashSet<string> SvmEvents = new(StringComparer.Ordinal)
    {
        "kvm_nested_vmrun", "kvm_nested_intercepts", "kvm_invlpga", "kvm_skinit", "kvm_avic_incomplete_ipi", "kvm_avic_unaccelerated_access",
        "kvm_avic_ga_log", "kvm_avic_kick_vcpu_slowpath", "kvm_avic_doorbell", "kvm_vmgexit_enter", "kvm_vmgexit_exit", "kvm_vmgexit_msr_protocol_enter",
    };

    internal sealed partial class Reader
    {
        private string Where(int lineNo) => $"{Path.GetFileName(result.File)}:{lineNo}";

        /// <summary>What one event says about the host: its architecture, the x86 vendor and the paging mode.</summary>
        private void Clues(int lineNo, string ev, string msg)
        {
            var host = result.Host;
            if (host.Arch is not null && host.Vendor is not null && host.Tdp is { Strong: true } && host.TdpMmu is not null)
            {
                // Everything is known: the common case of a long trace costs no more than this test.
                return;
            }

            if (host.Arch is null)
            {
                if (ev.StartsWith("kvm_mmu_", StringComparison.Ordinal) || ev.StartsWith("kvm_tdp_mmu_", StringComparison.Ordinal) || X86Events.Contains(ev) || ev.StartsWith("kvm_hv_", StringComparison.Ordinal))
                {
                    host.SawArch(Arch.X86_64, $"the x86 event {ev} ({Where(lineNo)})");
                }
                else if (Arm64Events.Contains(ev) || ev.StartsWith("vgic_", StringComparison.Ordinal) || ev.StartsWith("kvm_arm_", StringComparison.Ordinal))
                {
                    host.SawArch(Arch.Arm64, $"the arm64 event {ev} ({Where(lineNo)})");
                }
            }

            if (host.Vendor is null && SvmEvents.Contains(ev))
            {
                host.SawArch(Arch.X86_64, $"the SVM event {ev} ({Where(lineNo)})");
                host.SawVendor(X86Vendor.Amd, $"the SVM event {ev} ({Where(lineNo)})");
            }

            switch (ev)
            {
                case "kvm_exit" or "kvm_nested_vmexit" or "kvm_nested_vmexit_inject" when host.Vendor is null || host.Tdp is not { Strong: true } || host.Arch is null:
                    ExitClues(lineNo, ev, msg);
                    break;
                case "kvm_entry" when host.Arch is null && msg.Contains("PC: ", StringComparison.Ordinal):
                    host.SawArch(Arch.Arm64, $"kvm_entry prints a PC ({Where(lineNo)})");
                    break;
                case "kvm_pml_full" when host.Vendor is null:
                    host.SawVendor(X86Vendor.Intel, $"the VMX event kvm_pml_full ({Where(lineNo)})");
                    break;
                case "kvm_tdp_mmu_spte_changed" when host.TdpMmu is null:
                    host.SawTdp(true, $"kvm_tdp_mmu_spte_changed ({Where(lineNo)})");
                    host.SawTdpMmu(true, $"kvm_tdp_mmu_spte_changed ({Where(lineNo)})");
                    break;
                case "kvm_mmu_sync_page" or "kvm_mmu_unsync_page" when host.Tdp is not { Strong: true }:
                    host.SawTdp(false, $"{ev}: only shadow pages are unsync ({Where(lineNo)})");
                    break;
                case "kvm_mmu_get_page" when host.Tdp is not { Strong: true }:
                    RoleClue(lineNo, msg);
                    break;
            }
        }

        private void ExitClues(int lineNo, string ev, string msg)
        {
            var host = result.Host;
            if (msg.Contains("ESR_EC", StringComparison.Ordinal) || msg.Contains("HSR_EC", StringComparison.Ordinal))
            {
                if (host.Arch is null)
                {
                    host.SawArch(Arch.Arm64, $"{ev} prints an ESR class ({Where(lineNo)})");
                }

                return;
            }

            if (host.Arch is null)
            {
                host.SawArch(Arch.X86_64, $"the x86 form of {ev} ({Where(lineNo)})");
            }

            X86Vendor? vendor = IsaRx().Match(msg) is { Success: true } isa
                ? isa.Groups["isa"].Value == "2" ? X86Vendor.Amd : X86Vendor.Intel
                : null;
            var reason = ExitReasonRx().Match(msg) is { Success: true } r ? r.Groups["reason"].Value : null;
            if (vendor is null && reason is not null && !reason.All(char.IsDigit))
            {
                vendor = reason.Any(char.IsLower) ? X86Vendor.Amd : X86Vendor.Intel;
            }

            if (vendor is { } v)
            {
                host.SawVendor(v, $"{ev} {(reason is null ? "isa" : "reason " + reason)} ({Where(lineNo)})");
            }

            // EPT violations and nested page faults only exist with two-dimensional paging.
            if (reason is "EPT_VIOLATION" or "EPT_MISCONFIG" or "npf")
            {
                host.SawTdp(true, $"{ev} reason {reason} ({Where(lineNo)})");
            }
        }

        /// <summary>kvm_mmu_page_role bit 7 is direct: an indirect page shadows a guest page table, which only shadow paging makes.</summary>
        private void RoleClue(int lineNo, string msg)
        {
            bool? direct = RoleRx().Match(msg) is { Success: true } r
                ? (Dec(r.Groups["role"].Value) & 0x80) != 0
                : QuadrantRx().Match(msg) is { Success: true } q ? q.Groups["direct"].Success : null;
            if (direct == false)
            {
                result.Host.SawTdp(false, $"kvm_mmu_get_page of an indirect shadow page ({Where(lineNo)})");
            }
            else if (direct == true && result.Host.Tdp is null)
            {
                // TDP makes only direct pages, but so does shadow paging of a guest without paging: a weak clue.
                result.Host.SawTdp(true, $"kvm_mmu_get_page of a direct page ({Where(lineNo)})", strong: false);
            }
        }
    }
}
