using System.Globalization;
using System.Text.RegularExpressions;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Projections.Serialization;

namespace Audit.Api.Import;

/// <summary>
/// tracefs text (trace, trace_pipe, trace-cmd report; plain or options/fields rendering). A
/// kvm_mmu_set_spte that follows its kvm_mmu_spte_requested is a fault: it becomes GuestFaulted
/// plus Stage2MappingObserved (the SPTE's permissions and level); one without is a prefetch and
/// is counted. kvm_unmap_hva_range becomes MmuNotifierInvalidated; a -EFAULT userspace exit becomes
/// MemoryFaultExitObserved at the gpa of the guest page walk before it. Syscall events anchor the
/// clock for merging with strace; every other line is counted by event name.
/// </summary>
public static partial class FtraceImporter
{
    [GeneratedRegex(@"^\s*(?<task>.+?)-(?<pid>\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(?<cpu>\d+)\]\s+(?:\S+\s+)?(?<ts>\d+\.\d+):\s+(?<body>.*)$")]
    private static partial Regex LineRx();

    /// <summary>"event: message", or a syscall's "sys_x(args)" / "sys_x -> ret".</summary>
    [GeneratedRegex(@"^(?<event>[\w:]+?)(?::\s?|(?=\()|(?= -> ))(?<msg>.*)$")]
    private static partial Regex BodyRx();

    [GeneratedRegex(@"gfn (?<gfn>[0-9a-fx]+) spte (?<spte>[0-9a-fx]+) \((?<perms>[-rwxu]+)\) level (?<level>\d)")]
    private static partial Regex SetSpteRx();

    [GeneratedRegex(@"gfn=(?<gfn>0x[0-9a-f]+).*?spte=(?<spte>0x[0-9a-f]+).*?level=\(?(?<level>0x[0-9a-f]+|\d+)")]
    private static partial Regex SetSpteFieldsRx();

    [GeneratedRegex(@"gfn[ =](?<gfn>0x[0-9a-f]+|[0-9a-f]+)")]
    private static partial Regex GfnRx();

    [GeneratedRegex(@"(?:start=)?(?<start>0x[0-9a-f]+)(?:\s+\(\d+\))?\s+(?:--\s+|end=)(?<end>0x[0-9a-f]+)")]
    private static partial Regex RangeRx();

    [GeneratedRegex(@"^(?<call>sys_\w+) -> (?<ret>0x[0-9a-f]+|-?\d+)")]
    private static partial Regex SysExitRx();

    [GeneratedRegex(@"pte[ =](?<pte>0x[0-9a-f]+|[0-9a-f]+)")]
    private static partial Regex PteRx();

    public static bool Looks(string line) => line.StartsWith("# tracer:", StringComparison.Ordinal) || LineRx().IsMatch(line);

    public static ImportResult Read(string file, TextReader reader)
    {
        var result = new ImportResult(file, "ftrace");
        var requested = new HashSet<ulong>();
        ulong? lastPte = null;
        var lineNo = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNo++;
            result.Lines++;
            if (string.IsNullOrWhiteSpace(line) || line.TrimStart().StartsWith('#') || line.StartsWith("cpus=", StringComparison.Ordinal) || line.StartsWith("CPU ", StringComparison.Ordinal) || line.Contains("LOST", StringComparison.Ordinal) && line.Contains("EVENTS", StringComparison.Ordinal))
            {
                result.Count("header, blank or lost-events line");
                continue;
            }

            var m = LineRx().Match(line);
            if (!m.Success)
            {
                result.Error = new TraceError(file, lineNo, "not a tracefs event line (expected 'TASK-PID [CPU] ... TIMESTAMP: event: ...')");
                return result;
            }

            try
            {
                if (Line(result, requested, ref lastPte, lineNo, m) is { } error)
                {
                    result.Error = new TraceError(file, lineNo, error);
                    return result;
                }
            }
            catch (Exception ex) when (ex is FormatException or OverflowException or ArgumentException)
            {
                result.Error = new TraceError(file, lineNo, "cannot read the event: " + ex.Message);
                return result;
            }
        }

        return result;
    }

    /// <summary>One event line; returns an error message for a line that cannot be read.</summary>
    private static string? Line(ImportResult result, HashSet<ulong> requested, ref ulong? lastPte, int lineNo, Match m)
    {
        {
            var ts = (long)(decimal.Parse(m.Groups["ts"].Value, CultureInfo.InvariantCulture) * 1_000_000_000m);
            var body = BodyRx().Match(m.Groups["body"].Value);
            if (!body.Success)
            {
                result.Count("unrecognised event text");
                return null;
            }

            var ev = body.Groups["event"].Value;
            var msg = body.Groups["msg"].Value;
            void Add(InputEvent e) => result.Events.Add(new ImportedEvent(lineNo, ts, e));
            switch (ev)
            {
                case "kvm_mmu_spte_requested" when GfnRx().Match(msg) is { Success: true } g:
                    requested.Add(Number(g.Groups["gfn"].Value));
                    result.Count("kvm_mmu_spte_requested (joined with its kvm_mmu_set_spte)");
                    break;
                case "kvm_mmu_set_spte":
                    if (!TrySpte(msg, out var gfn, out var spte, out var perms, out var level))
                    {
                        return "kvm_mmu_set_spte without gfn, spte and level";
                    }

                    if (!requested.Remove(gfn))
                    {
                        result.Count("kvm_mmu_set_spte without a request (prefetch)");
                        break;
                    }

                    var size = level switch { 2 => 0x200000UL, 3 => 0x40000000UL, _ => 0x1000UL };
                    var gpa = new Gpa(gfn << 12);

                    // The SPTE shows what the fault needed: writable means a write fault.
                    Add(new GuestFaulted(0, gpa, (perms & Perms.W) != 0 ? Access.Write : Access.Read, FaultKind.Translation));
                    // PWT (bit 3) and PCD (bit 4) clear: write-back; shadow SPTEs carry no other memory type.
                    var memType = (spte & 0x18) == 0 ? Stage2MemType.WB : Stage2MemType.UC;
                    Add(new Stage2MappingObserved(gpa.AlignDown(size), size, memType, null, perms & (Perms.R | Perms.W | Perms.X), Hex.Format(spte)));
                    break;
                case "kvm_unmap_hva_range" when RangeRx().Match(msg) is { Success: true } r:
                    Add(new MmuNotifierInvalidated(new Hva(Number(r.Groups["start"].Value) & ~0xfffUL), new Hva(Syntax.PageUp(Number(r.Groups["end"].Value)))));
                    break;
                case "kvm_mmu_paging_element" when PteRx().Match(msg) is { Success: true } p:
                    lastPte = Number(p.Groups["pte"].Value);
                    result.Count(ev);
                    break;
                case "kvm_userspace_exit" when (msg.Contains("reason error (14)", StringComparison.Ordinal) || msg.Contains("reason=0x27", StringComparison.Ordinal)) && lastPte is { } pte:
                    // KVM_RUN returned -EFAULT; the gpa is the page the guest's last walk reached.
                    Add(new MemoryFaultExitObserved(new Gpa(pte & 0x000f_ffff_ffff_f000UL), 0x1000, 0));
                    break;
                case "tracing_mark_write":
                    result.ClockMatches.Add(("marker:" + msg.Trim(), ts));
                    result.Count("tracing_mark_write (marker)");
                    break;
                default:
                    if (ev.StartsWith("sys_", StringComparison.Ordinal))
                    {
                        if (SysExitRx().Match(ev + msg) is { Success: true } x && x.Groups["call"].Value == "sys_mmap")
                        {
                            result.ClockMatches.Add(("mmap:" + Hex.Format(Number(x.Groups["ret"].Value)), ts));
                        }

                        result.Count("syscall event (VMA changes come from strace)");
                    }
                    else
                    {
                        result.Count(ev);
                    }

                    break;
            }
        }

        return null;
    }

    private static bool TrySpte(string msg, out ulong gfn, out ulong spte, out Perms perms, out int level)
    {
        if (SetSpteRx().Match(msg) is { Success: true } m)
        {
            gfn = Number(m.Groups["gfn"].Value);
            spte = Number(m.Groups["spte"].Value);
            level = int.Parse(m.Groups["level"].Value, CultureInfo.InvariantCulture);
            var p = m.Groups["perms"].Value;
            perms = (p.Contains('r', StringComparison.Ordinal) ? Perms.R : 0) | (p.Contains('w', StringComparison.Ordinal) ? Perms.W : 0) | (p.Contains('x', StringComparison.Ordinal) ? Perms.X : 0);
            return true;
        }

        if (SetSpteFieldsRx().Match(msg) is { Success: true } f)
        {
            gfn = Number(f.Groups["gfn"].Value);
            spte = Number(f.Groups["spte"].Value);
            level = f.Groups["level"].Value.StartsWith("0x", StringComparison.Ordinal) ? (int)Number(f.Groups["level"].Value) : int.Parse(f.Groups["level"].Value, CultureInfo.InvariantCulture);

            // The fields rendering names r/w/x when set; else read the raw x86 SPTE (present 0, writable 1, NX 63).
            perms = msg.Contains("r=(1)", StringComparison.Ordinal) || msg.Contains("w=(1)", StringComparison.Ordinal) || msg.Contains("x=(1)", StringComparison.Ordinal)
                ? (msg.Contains("r=(1)", StringComparison.Ordinal) ? Perms.R : 0) | (msg.Contains("w=(1)", StringComparison.Ordinal) ? Perms.W : 0) | (msg.Contains("x=(1)", StringComparison.Ordinal) ? Perms.X : 0)
                : ((spte & 1) != 0 ? Perms.R : 0) | ((spte & 2) != 0 ? Perms.W : 0) | ((spte >> 63) == 0 ? Perms.X : 0);
            return true;
        }

        (gfn, spte, perms, level) = (0, 0, Perms.None, 0);
        return false;
    }

    /// <summary>Tracefs prints gfns and ptes in hex, with or without 0x.</summary>
    private static ulong Number(string s) =>
        ulong.Parse(s.StartsWith("0x", StringComparison.Ordinal) ? s[2..] : s, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
}
