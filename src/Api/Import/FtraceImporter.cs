using System.Globalization;
using System.Text.RegularExpressions;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Projections.Serialization;

namespace Audit.Api.Import;

/// <summary>
/// tracefs text (trace, trace_pipe, trace-cmd report; plain or options/fields rendering) and perf script
/// text (<see cref="PerfImporter"/>) of the kvm and kvmmmu events.
/// <list type="bullet">
/// <item>x86: a kvm_mmu_set_spte that follows its kvm_mmu_spte_requested is a fault: GuestFaulted plus
/// Stage2MappingObserved (the decoded SPTE); one without is a prefetch and is counted. Where the host
/// traces kvm_page_fault with a guest physical address (VMX/SVM with TDP), that event is the fault and
/// its error code gives the access; under shadow paging its address is a guest virtual one (a page-table
/// walk follows) and it is counted.</item>
/// <item>arm64: kvm_guest_fault is the fault, its ESR decoded (abort class, WnR, S1PTW, CM, fault status).</item>
/// <item>kvm_unmap_hva_range becomes MmuNotifierInvalidated; a -EFAULT userspace exit becomes
/// MemoryFaultExitObserved at the gpa of the guest page walk before it; kvm_vm_set_mem_attributes
/// becomes MemoryAttributesSet.</item>
/// <item>Syscall events and trace markers anchor the clock for merging with strace; every other line is
/// counted by event name.</item>
/// </list>
/// </summary>
public static partial class FtraceImporter
{
    /// <summary>
    /// trace, trace_pipe and `trace-cmd report`: "TASK-PID [CPU] FLAGS TIMESTAMP: event: ...", with an optional
    /// "(TGID)" (options/record-tgid), trace-cmd -R's "[CPU]-0xFLAGS", an integer timestamp (a counter clock, or
    /// trace-cmd's %12d), and --ts-diff's "(+N)" before the event.
    /// </summary>
    [GeneratedRegex(@"^\s*(?<task>.+?)-(?<pid>\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(?<cpu>\d+)\](?:-0x[0-9a-f]+)?\s+(?:\S+\s+)?(?<ts>\d+(?:\.\d+)?):\s+(?:\(\+\d+\)\s+)?(?<body>.*)$")]
    private static partial Regex LineRx();

    /// <summary>
    /// options/latency-format (and trace-cmd report -l): "COMM-PID CPU FLAGS TIME: event: ...", where FLAGS is
    /// the irq-flags column ("d..1." irqs-off, need-resched, hard/softirq, preempt depth, migrate-disable)
    /// glued to the CPU number, and TIME is microseconds since the buffer started ("1234us" plus a delay mark)
    /// or trace-cmd's seconds.
    /// </summary>
    [GeneratedRegex(@"^\s*(?<task>.+?)-(?<pid>\d+)\s+(?<cpu>\d+)\s?(?<flags>[dDXN.nhHsSbBzZ0-9]{4,6})\s+(?<ts>\d+(?:\.\d+)?)(?<us>us)?[ +!#*@$]?:\s+(?<body>.*)$")]
    private static partial Regex LatencyRx();

    /// <summary>"event: message", or a syscall's "sys_x(args)" / "sys_x -> ret"; perf's "group:event: message".</summary>
    [GeneratedRegex(@"^(?:[a-z_0-9]+:(?=[a-z_]))?(?<event>\w+?)(?::\s?|(?=\()|(?= -> )|$)(?<msg>.*)$")]
    private static partial Regex BodyRx();

    [GeneratedRegex(@"gfn (?<gfn>[0-9a-fx]+) spte (?<spte>[0-9a-fx]+) \((?<perms>[-rwxu]*)\) level (?<level>\d)")]
    private static partial Regex SetSpteRx();

    [GeneratedRegex(@"gfn=(?<gfn>0x[0-9a-f]+|\d+).*?spte=(?<spte>0x[0-9a-f]+|\d+).*?level=\(?(?<level>0x[0-9a-f]+|\d+)")]
    private static partial Regex SetSpteFieldsRx();

    /// <summary>"gfn 10" is hex (the printk form); "gfn=0x10" or a raw "gfn=16" is a field.</summary>
    [GeneratedRegex(@"gfn (?<hex>(?:0x)?[0-9a-f]+)|gfn=(?<dec>0x[0-9a-f]+|\d+)")]
    private static partial Regex GfnRx();

    [GeneratedRegex(@"(?:start=)?(?<start>0x[0-9a-f]+|(?<=start=)\d+)(?:\s+\(\d+\))?\s+(?:--\s+|end=)(?<end>0x[0-9a-f]+|(?<=end=)\d+)")]
    private static partial Regex RangeRx();

    [GeneratedRegex(@"^(?:sys_mmap -> |sys_exit_mmap:?\s*(?:__syscall_nr=\S+\s+(?:\(\d+\)\s+)?)?(?:ret=)?)(?<ret>0x[0-9a-f]+|-?\d+)")]
    private static partial Regex MmapExitRx();

    [GeneratedRegex(@"pte[ =](?<pte>0x[0-9a-f]+|[0-9a-f]+)")]
    private static partial Regex PteRx();

    [GeneratedRegex(@"(?:vcpu[ =](?<vcpu>\d+).*?)?address[ =](?<addr>0x[0-9a-f]+|[0-9a-f]+).*?error_code[ =](?<ec>0x[0-9a-f]+|[0-9a-f]+)")]
    private static partial Regex PageFaultRx();

    [GeneratedRegex(@"ipa[ =](?<ipa>0x[0-9a-f]+|[0-9a-f]+).*?(?:hsr|esr)[ =](?<esr>0x[0-9a-f]+|[0-9a-f]+)")]
    private static partial Regex GuestFaultRx();

    [GeneratedRegex(@"gfn[ =](?<gfn>0x[0-9a-f]+|[0-9a-f]+).*?level[ =](?<level>\d+).*?old_spte[ =](?<old>0x[0-9a-f]+|[0-9a-f]+).*?new_spte[ =](?<new>0x[0-9a-f]+|[0-9a-f]+)")]
    private static partial Regex SpteChangedRx();

    [GeneratedRegex(@"(?<start>0x[0-9a-f]+)\s+--\s+(?<end>0x[0-9a-f]+)\s+\[(?<attr>0x[0-9a-f]+)\]|start=(?<start>0x[0-9a-f]+).*?end=(?<end>0x[0-9a-f]+).*?attr=(?<attr>0x[0-9a-f]+)")]
    private static partial Regex AttributesRx();

    [GeneratedRegex(@"addr[ =](?<addr>0x[0-9a-f]+|[0-9a-f]+)\s+(?:\(\d+\)\s+)?pferr[ =](?<pferr>0x[0-9a-f]+|[0-9a-f]+)")]
    private static partial Regex WalkRx();

    public static bool Looks(string line) => line.StartsWith("# tracer:", StringComparison.Ordinal) || LineRx().IsMatch(line) || LatencyRx().IsMatch(line);

    public static ImportResult Read(string file, TextReader reader) =>
        new Reader(new ImportResult(file, "ftrace")).Run(reader, [LineRx(), LatencyRx()], "not a tracefs event line (expected 'TASK-PID [CPU] ... TIMESTAMP: event: ...')");

    /// <summary>The event-reading state shared by the tracefs and perf front ends (one per file).</summary>
    internal sealed partial class Reader(ImportResult result)
    {
        private readonly HashSet<ulong> requested = [];
        private ulong? lastPte;
        private bool? ept;
        private (int Line, long Ts, GuestFaulted Fault)? pendingPageFault;
        private ulong? faultGfn;

        /// <summary>The guest page-table walk of the last shadow-paging #PF: its error code and the leaf pte it reached.</summary>
        private (int Line, long Ts, ulong Pferr, ulong? Leaf)? walk;

        /// <summary>Reads every line; each of <paramref name="headers"/> (tried in order) gives the groups body and, if it matched, ts.</summary>
        public ImportResult Run(TextReader reader, Regex[] headers, string notALine)
        {
            var lineNo = 0;
            long? lastTs = null;
            string? lastCpu = null;
            var lastPid = "";
            var outOfOrder = false;
            while (reader.ReadLine() is { } line)
            {
                lineNo++;
                result.Lines++;
                if (NotAnEvent(line, lineNo))
                {
                    continue;
                }

                var m = Match(headers, line);
                if (m is null)
                {
                    result.Error = new TraceError(result.File, lineNo, notALine);
                    return result;
                }

                try
                {
                    var ts = m.Groups["ts"].Success ? Time(m) : lastTs ?? 0;

                    // Each CPU's buffer is in time order; going back in time on another CPU means the
                    // CPUs were read one after another.
                    var cpu = m.Groups["cpu"].ValueSpan;
                    var pid = m.Groups["tid"].Success ? m.Groups["tid"] : m.Groups["pid"];
                    if (!pid.ValueSpan.SequenceEqual(lastPid))
                    {
                        // Lines of one thread come in runs: a string per run, not per line.
                        lastPid = pid.Value;
                        result.Pids.Add(lastPid);
                    }

                    if (!cpu.SequenceEqual(lastCpu))
                    {
                        outOfOrder |= ts < lastTs;
                        lastCpu = cpu.ToString();
                    }

                    lastTs = ts;
                    if (Event(lineNo, ts, m.Groups["body"].Value) is { } error)
                    {
                        result.Error = new TraceError(result.File, lineNo, error);
                        return result;
                    }
                }
                catch (Exception ex) when (ex is FormatException or OverflowException or ArgumentException)
                {
                    result.Error = new TraceError(result.File, lineNo, "cannot read the event: " + ex.Message);
                    return result;
                }
            }

            FlushPageFault();
            if (outOfOrder)
            {
                // CPUs' buffers read one after another (per_cpu/cpuN/trace, trace-cmd --cpu): each CPU's
                // lines were paired in its own order; the run needs one order in time.
                var sorted = result.Events.OrderBy(e => e.TsNs).ToList();
                result.Events.Clear();
                result.Events.AddRange(sorted);
                result.Notes.Add("lines were out of time order (several CPUs' buffers one after another): events sorted by time");
            }

            return result;
        }

        private static Match? Match(Regex[] headers, string line)
        {
            foreach (var h in headers)
            {
                if (h.Match(line) is { Success: true } m)
                {
                    return m;
                }
            }

            return null;
        }

        /// <summary>perf script -g prints each frame indented under its event: "\t ffffffffc0a1b2c3 kvm_mmu_set_spte+0x1b3 ([kvm])".</summary>
        private static bool IsCallchainFrame(string line)
        {
            var t = line.AsSpan().TrimStart();
            var space = t.IndexOf(' ');
            return space >= 4 && t[..space].IndexOfAnyExcept("0123456789abcdef") < 0 && !t.Contains(": ", StringComparison.Ordinal);
        }

        /// <summary>Seconds with a fraction; an integer is a counter clock's count (kept as ns); latency-format's "us" is microseconds.</summary>
        private static long Time(Match m)
        {
            var text = m.Groups["ts"].Value;
            if (m.Groups["us"].Success)
            {
                return long.Parse(text, CultureInfo.InvariantCulture) * 1000;
            }

            return text.Contains('.', StringComparison.Ordinal)
                ? (long)(decimal.Parse(text, CultureInfo.InvariantCulture) * 1_000_000_000m)
                : long.Parse(text, CultureInfo.InvariantCulture);
        }

        /// <summary>Headers, blank lines and lost-events marks: counted, and read for what they say about the host.</summary>
        private bool NotAnEvent(string line, int lineNo)
        {
            if (string.IsNullOrWhiteSpace(line))
            {
                result.Count("blank");
                return true;
            }

            if (line.AsSpan().TrimStart().StartsWith("#", StringComparison.Ordinal) || line.StartsWith("cpus=", StringComparison.Ordinal) || line.StartsWith("version = ", StringComparison.Ordinal))
            {
                var trimmed = line.TrimStart();
                var where = $"{Path.GetFileName(result.File)}:{lineNo}";
                result.Host.PerfHeader(trimmed, where);
                result.Host.TryUname(trimmed, where);
                result.Count("header");
                return true;
            }

            if (line[0] is ' ' or '\t' && IsCallchainFrame(line))
            {
                result.Count("callchain frame (perf script -g)");
                return true;
            }

            if (line.StartsWith("CPU:", StringComparison.Ordinal) || line.StartsWith("CPU ", StringComparison.Ordinal) || (line.Contains("LOST", StringComparison.Ordinal) && line.Contains("EVENTS", StringComparison.OrdinalIgnoreCase)))
            {
                // tracefs "CPU:1 [LOST 12 EVENTS]", trace-cmd "CPU:1 [12 EVENTS DROPPED]" and "[SUBBUFFER START]", perf's LOST.
                result.Count(line.Contains("LOST", StringComparison.Ordinal) || line.Contains("DROPPED", StringComparison.Ordinal)
                    ? "lost-events line (the kernel dropped events here: faults may be missing)" : "buffer mark");
                return true;
            }

            if (line.Contains("Linux", StringComparison.Ordinal) && result.Host.TryUname(line.Trim(), $"{Path.GetFileName(result.File)}:{lineNo}"))
            {
                // trace-cmd report --uname prints the recording host's uname before the events.
                result.Count("uname line");
                return true;
            }

            return false;
        }

        private void Add(int line, long ts, InputEvent e) => result.Events.Add(new ImportedEvent(line, ts, e));

        /// <summary>A kvm_page_fault waits one event: a guest page-table walk after it means shadow paging (a gva).</summary>
        private void FlushPageFault()
        {
            if (pendingPageFault is { } p)
            {
                Add(p.Line, p.Ts, p.Fault);
                faultGfn = p.Fault.Gpa.Value >> 12;
                pendingPageFault = null;
            }
        }

        /// <summary>One event line; returns an error message for a line that cannot be read.</summary>
        private string? Event(int lineNo, long ts, string text)
        {
            text = text.Replace("[FAILED TO PARSE] ", "", StringComparison.Ordinal);
            var body = BodyRx().Match(text);
            if (!body.Success)
            {
                result.Count("unrecognised event text");
                return null;
            }

            var ev = body.Groups["event"].Value;
            var msg = body.Groups["msg"].Value;
            Clues(lineNo, ev, msg);
            if (ev == "kvm_mmu_pagetable_walk" && pendingPageFault is not null)
            {
                // Shadow paging: the page fault's address was the guest's virtual address.
                if (result.Host.Tdp is not { Strong: true })
                {
                    result.Host.SawTdp(false, $"a guest page-table walk follows kvm_page_fault ({Where(lineNo)})");
                }

                pendingPageFault = null;
                result.Count("kvm_page_fault (guest virtual address under shadow paging)");
            }

            FlushPageFault();
            switch (ev)
            {
                case "kvm_mmu_pagetable_walk" when WalkRx().Match(msg) is { Success: true } w:
                    // "pferr 7" (printk) and "pferr=0x7" are hex; perf's raw "pferr=7" is decimal.
                    var pferr = w.Groups["pferr"].Value;
                    walk = (lineNo, ts, msg.Contains("pferr=", StringComparison.Ordinal) ? Dec(pferr) : Number(pferr), null);
                    result.Count(ev);
                    break;
                case "kvm_mmu_spte_requested" when GfnRx().Match(msg) is { Success: true } g:
                    requested.Add(g.Groups["hex"].Success ? Number(g.Groups["hex"].Value) : Dec(g.Groups["dec"].Value));
                    result.Count("kvm_mmu_spte_requested (joined with its kvm_mmu_set_spte)");
                    break;
                case "kvm_mmu_set_spte":
                    return SetSpte(lineNo, ts, msg);
                case "kvm_page_fault" when PageFaultRx().Match(msg) is { Success: true } pf:
                    pendingPageFault = (lineNo, ts, PageFault(pf, msg));
                    break;
                case "kvm_guest_fault" when GuestFaultRx().Match(msg) is { Success: true } gf:
                    Add(lineNo, ts, Arm64Fault(Field(gf.Groups["ipa"], msg), Field(gf.Groups["esr"], msg)));
                    break;
                case "kvm_tdp_mmu_spte_changed" when SpteChangedRx().Match(msg) is { Success: true } c:
                {
                    var old = new Spte(Field(c.Groups["old"], msg), ept ?? true);
                    var now = new Spte(Field(c.Groups["new"], msg), ept ?? true);
                    result.Count(now.Present ? (old.Present ? "kvm_tdp_mmu_spte_changed (changed)" : "kvm_tdp_mmu_spte_changed (installed)") : old.Present ? "kvm_tdp_mmu_spte_changed (zapped)" : "kvm_tdp_mmu_spte_changed (no-op)");
                    break;
                }

                case "kvm_exit":
                    if (msg.Contains("EPT_", StringComparison.Ordinal))
                    {
                        ept = true;
                    }
                    else if (msg.Contains("npf", StringComparison.OrdinalIgnoreCase))
                    {
                        ept = false;
                    }

                    result.Count(ev);
                    break;
                case "kvm_unmap_hva_range" when RangeRx().Match(msg) is { Success: true } r:
                    Add(lineNo, ts, new MmuNotifierInvalidated(new Hva(Field(r.Groups["start"], msg) & ~0xfffUL), new Hva(Syntax.PageUp(Field(r.Groups["end"], msg)))));
                    break;
                case "kvm_vm_set_mem_attributes" when AttributesRx().Match(msg) is { Success: true } a:
                {
                    var start = Field(a.Groups["start"], msg);
                    var end = Field(a.Groups["end"], msg);
                    if (end > start)
                    {
                        Add(lineNo, ts, new MemoryAttributesSet(new Gpa(start << 12), (end - start) << 12, (Field(a.Groups["attr"], msg) & 0x8) != 0, 0));
                    }
                    else
                    {
                        result.Count("kvm_vm_set_mem_attributes (empty range)");
                    }

                    break;
                }

                case "kvm_mmu_paging_element" when PteRx().Match(msg) is { Success: true } p:
                    lastPte = Field(p.Groups["pte"], msg);
                    if (walk is { } cur)
                    {
                        walk = cur with { Leaf = lastPte };
                    }

                    result.Count(ev);
                    break;
                case "kvm_userspace_exit" when (msg.Contains("reason error (14)", StringComparison.Ordinal) || msg.Contains("reason=0x27", StringComparison.Ordinal) || msg.Contains("KVM_EXIT_MEMORY_FAULT", StringComparison.Ordinal)) && lastPte is { } pte:
                    // KVM_RUN returned -EFAULT on the page the guest's last walk reached: that #PF is the
                    // fault (it set no SPTE), then the exit.
                    if (walk is { Leaf: { } leaf } w2 && (leaf & GpteAddress) == (pte & GpteAddress))
                    {
                        Add(lineNo, ts, WalkFault(w2.Pferr, leaf));
                    }

                    walk = null;
                    Add(lineNo, ts, new MemoryFaultExitObserved(new Gpa(pte & GpteAddress), 0x1000, 0));
                    break;
                case "kvm_userspace_exit":
                    walk = null;
                    result.Count(ev);
                    break;
                case "tracing_mark_write" or "print":
                    result.ClockMatches.Add(("marker:" + msg.Trim(), ts));
                    result.Count("tracing_mark_write (marker)");
                    break;
                default:
                    if (ev.StartsWith("sys_", StringComparison.Ordinal))
                    {
                        if (MmapExitRx().Match(ev + (ev == "sys_mmap" ? "" : ":") + msg) is { Success: true } x)
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

            return null;
        }

        private string? SetSpte(int lineNo, long ts, string msg)
        {
            if (!TrySpte(msg, out var gfn, out var raw, out var textPerms, out var level, out var eptForm))
            {
                return "kvm_mmu_set_spte without gfn, spte and level";
            }

            if (eptForm == true && result.Host.Vendor is null)
            {
                // KVM prints no user bit for EPT SPTEs (shadow_user_mask is 0 only with EPT).
                result.Host.SawTdp(true, $"an EPT SPTE (no user bit) in kvm_mmu_set_spte ({Where(lineNo)})");
                result.Host.SawVendor(Domain.Events.X86Vendor.Intel, $"an EPT SPTE (no user bit) in kvm_mmu_set_spte ({Where(lineNo)})");
            }

            var spte = new Spte(raw, eptForm ?? ept ?? false);
            if (!requested.Remove(gfn))
            {
                result.Count("kvm_mmu_set_spte without a request (prefetch)");
                return null;
            }

            var size = Spte.LevelSize(level);
            var gpa = new Gpa(gfn << 12);
            var perms = (textPerms ?? spte.Perms) & (Perms.R | Perms.W | Perms.X);
            if (faultGfn is { } f && GpaRange.FromSize(gpa.AlignDown(size), size).Contains(new Gpa(f << 12)))
            {
                // The kvm_page_fault before it was the fault (with its real access).
                faultGfn = null;
            }
            else if (walk is { Leaf: { } leaf } w && GpaRange.FromSize(gpa.AlignDown(size), size).Contains(new Gpa(leaf & GpteAddress)))
            {
                // Shadow paging: the guest walk before it gives the access (its error code) and the guest PTE's dirty bit.
                Add(lineNo, ts, WalkFault(w.Pferr, leaf) with { Gpa = gpa });
                walk = null;
            }
            else
            {
                // The SPTE shows what the fault needed: writable means a write fault.
                Add(lineNo, ts, new GuestFaulted(0, gpa, (perms & Perms.W) != 0 ? Access.Write : Access.Read, FaultKind.Translation));
            }

            Add(lineNo, ts, new Stage2MappingObserved(gpa.AlignDown(size), size, spte.MemType, spte.Ipat, perms, Hex.Format(raw)));
            return null;
        }

        private const ulong GpteAddress = 0x000f_ffff_ffff_f000UL;

        /// <summary>A shadow-paging #PF from its walk: PFERR present 0 (a permission fault), write 1, fetch 4; the leaf guest PTE's D is bit 6.</summary>
        private static GuestFaulted WalkFault(ulong pferr, ulong leaf) =>
            new(0, new Gpa(leaf & GpteAddress), (pferr & 0x10) != 0 ? Access.Exec : (pferr & 0x2) != 0 ? Access.Write : Access.Read,
                (pferr & 1) != 0 ? FaultKind.Permission : FaultKind.Translation, GuestPteDirty: (leaf & 0x40) != 0);

        /// <summary>x86 PFERR bits: present 0, write 1, fetch 4, the SNP C-bit 34, KVM's private-access 49.</summary>
        private static GuestFaulted PageFault(Match pf, string msg)
        {
            var ec = Field(pf.Groups["ec"], msg);
            var access = (ec & 0x10) != 0 ? Access.Exec : (ec & 0x2) != 0 ? Access.Write : Access.Read;
            var vcpu = pf.Groups["vcpu"].Success ? int.Parse(pf.Groups["vcpu"].Value, CultureInfo.InvariantCulture) : 0;
            bool? priv = (ec & ((1UL << 34) | (1UL << 49))) != 0 ? true : null;
            return new GuestFaulted(vcpu, new Gpa(Field(pf.Groups["addr"], msg) & ~0xfffUL), access, (ec & 1) != 0 ? FaultKind.Permission : FaultKind.Translation, priv);
        }

        /// <summary>
        /// ESR_ELx of a stage-2 abort: EC 0x20/0x21 instruction abort, 0x24/0x25 data abort; WnR bit 6,
        /// S1PTW bit 7, CM bit 8; fault status bits 0-5 (translation 0b0001LL, access flag 0b0010LL,
        /// permission 0b0011LL, LL the level).
        /// </summary>
        private static GuestFaulted Arm64Fault(ulong ipa, ulong esr)
        {
            var ec = (esr >> 26) & 0x3f;
            var exec = ec is 0x20 or 0x21;
            var write = !exec && (esr & (1UL << 6)) != 0;
            var fsc = esr & 0x3f;
            var kind = (fsc & 0x3c) switch { 0x08 => FaultKind.AccessFlag, 0x0c => FaultKind.Permission, _ => FaultKind.Translation };
            ulong? granule = kind == FaultKind.Permission ? (fsc & 3) switch { 1 => 0x40000000UL, 2 => 0x200000UL, _ => 0x1000UL } : null;
            return new GuestFaulted(0, new Gpa(ipa & ~0xfffUL), exec ? Access.Exec : write ? Access.Write : Access.Read, kind, null,
                (esr & (1UL << 7)) != 0, (esr & (1UL << 8)) != 0, granule);
        }

        private static bool TrySpte(string msg, out ulong gfn, out ulong spte, out Perms? perms, out int level, out bool? ept)
        {
            if (SetSpteRx().Match(msg) is { Success: true } m)
            {
                gfn = Number(m.Groups["gfn"].Value);
                spte = Number(m.Groups["spte"].Value);
                level = int.Parse(m.Groups["level"].Value, CultureInfo.InvariantCulture);
                var p = m.Groups["perms"].Value;
                perms = (p.Contains('r', StringComparison.Ordinal) ? Perms.R : 0) | (p.Contains('w', StringComparison.Ordinal) ? Perms.W : 0) | (p.Contains('x', StringComparison.Ordinal) ? Perms.X : 0);

                // KVM prints the user bit only for non-EPT SPTEs: three characters mean EPT.
                ept = p.Length == 3;
                return true;
            }

            if (SetSpteFieldsRx().Match(msg) is { Success: true } f)
            {
                gfn = Dec(f.Groups["gfn"].Value);
                spte = Dec(f.Groups["spte"].Value);
                level = (int)Dec(f.Groups["level"].Value);
                ept = msg.Contains("u=(-1)", StringComparison.Ordinal) || msg.Contains("u=-1", StringComparison.Ordinal) ? true : msg.Contains(" u=", StringComparison.Ordinal) ? false : null;

                // The fields rendering names r and x when set; w is bit 1 of the SPTE.
                perms = msg.Contains("r=(1)", StringComparison.Ordinal) || msg.Contains("r=1", StringComparison.Ordinal)
                    ? Perms.R | ((spte & 2) != 0 ? Perms.W : 0) | (msg.Contains("x=(1)", StringComparison.Ordinal) || msg.Contains("x=1", StringComparison.Ordinal) ? Perms.X : 0)
                    : null;
                return true;
            }

            (gfn, spte, perms, level, ept) = (0, 0, null, 0, null);
            return false;
        }
    }

    /// <summary>
    /// A captured value: printk forms ("pte 2007", "address 0x1000") are hex; a raw "name=value" field
    /// (trace-cmd -R, perf's [FAILED TO PARSE], options/fields) is decimal unless it says 0x.
    /// </summary>
    private static ulong Field(Group g, string msg) =>
        g.Index > 0 && msg[g.Index - 1] == '=' ? Dec(g.Value) : Number(g.Value);

    /// <summary>Tracefs prints gfns and ptes in hex, with or without 0x.</summary>
    internal static ulong Number(string s) =>
        ulong.Parse(s.StartsWith("0x", StringComparison.Ordinal) ? s[2..] : s, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);

    /// <summary>Raw fields (perf's [FAILED TO PARSE], options/fields) print 0x-hex or decimal.</summary>
    internal static ulong Dec(string s) =>
        s.StartsWith("0x", StringComparison.Ordinal) ? ulong.Parse(s[2..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture) : ulong.Parse(s, NumberStyles.None, CultureInfo.InvariantCulture);
}
