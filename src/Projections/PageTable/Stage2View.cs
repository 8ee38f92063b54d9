using Audit.Domain;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Intervals;
using Audit.Domain.Model;

namespace Audit.Projections.PageTable;

/// <summary>One stage-2 row: an interval mapped by one decision, with the events that last changed it.</summary>
public sealed record Stage2Row(
    ulong Granule,
    Stage2MemType MemType,
    bool? Ipat,
    Perms Perms,
    string Policy,
    long DecidedAt,
    long InputSeq,
    FaultResolved Decision,
    long LastChangeSeq,
    string LastChangeType,
    ValueList<ExplanationStep> Later);

/// <summary>Why an address has no mapping: the removal or refusal that came last.</summary>
public sealed record Stage2Gap(long Seq, string Type, string Outcome, ValueList<ExplanationStep> Explanation);

/// <summary>
/// The page-table view as a pure fold over a run's stored events (inputs and derived): Apply one
/// event at a time. Rows are intervals, never pages. Issue 4 persists the same rows with the seq
/// range in which each held.
/// </summary>
public sealed class Stage2View
{
    private readonly Dictionary<long, InputEvent> _inputs = [];

    public IntervalMap<Stage2Row> Rows { get; } = new();

    /// <summary>Per gpa range: the last removal. Per gfn: the last refused fault.</summary>
    public IntervalMap<Stage2Gap> Gaps { get; } = new();

    public long Seq { get; private set; }

    public void Apply(Recorded r)
    {
        Seq = r.Seq;
        switch (r.Event)
        {
            case GuestMemfdFallocated or GuestMemfdClosed or GuestMemfdConverted or MemslotSet or MemoryAttributesSet
                or NoncoherentDmaChanged or VmaMapped or VmaUnmapped or VmaProtectionChanged or VmaAdvised or MmuNotifierInvalidated or GuestFaulted:
                _inputs[r.Seq] = (InputEvent)r.Event;
                break;

            case FaultResolved f when f.Outcome is FaultOutcome.Mapped or FaultOutcome.Relaxed && f.Mapping is { } m:
                Rows.Set(m.Gpa.Value, m.Gpa.Value + m.Size, new Stage2Row(
                    m.Size, m.MemType, m.Ipat, m.Perms, f.Policy, r.Seq, f.InputSeq, f, r.Seq, "FaultResolved", ValueList<ExplanationStep>.Empty));
                Gaps.Remove(m.Gpa.Value, m.Gpa.Value + m.Size);
                break;

            case FaultResolved f when f.Outcome is not (FaultOutcome.Young or FaultOutcome.Mapped or FaultOutcome.Relaxed)
                && _inputs.GetValueOrDefault(f.InputSeq) is GuestFaulted g && !Rows.TryFind(g.Gpa.Value, out _):
                var page = g.Gpa.AlignDown(4096).Value;
                Gaps.Set(page, page + 4096, new Stage2Gap(r.Seq, "FaultResolved", OutcomeName(f.Outcome), f.Explanation));
                break;

            case Stage2Unmapped u:
                var cause = _inputs.GetValueOrDefault(u.CauseSeq);
                foreach (var range in u.Ranges)
                {
                    Rows.Remove(range.Start.Value, range.End.Value);
                    var step = new ExplanationStep(
                        CauseRule(cause).Id,
                        $"unmapped [{range.Start}, {range.End}) because of {CauseText(cause)} (seq {u.CauseSeq})",
                        ValueList.Of(new Fact("cause", cause?.GetType().Name ?? "unknown", u.CauseSeq), new Fact("range", range.ToString(), r.Seq)));
                    Gaps.Set(range.Start.Value, range.End.Value, new Stage2Gap(r.Seq, "Stage2Unmapped", "unmapped", ValueList.Of(step)));
                }

                break;

            case Stage2WriteProtected w:
                foreach (var range in w.Ranges)
                {
                    foreach (var i in Rows.Overlapping(range.Start.Value, range.End.Value))
                    {
                        var from = Math.Max(i.Start, range.Start.Value);
                        var to = Math.Min(i.End, range.End.Value);
                        var step = new ExplanationStep(
                            Rules.DirtyLogEnable.Id,
                            w.Split ? "dirty logging was enabled: write-protected and split to 4K pages" : "dirty logging was enabled: write-protected (blocks split on the next write)",
                            ValueList.Of(new Fact("memslot.flags", "KVM_MEM_LOG_DIRTY_PAGES", w.CauseSeq)));
                        Rows.Set(from, to, i.Value with
                        {
                            Perms = i.Value.Perms & ~Perms.W,
                            Granule = w.Split ? 4096 : i.Value.Granule,
                            LastChangeSeq = r.Seq,
                            LastChangeType = "Stage2WriteProtected",
                            Later = i.Value.Later.Add(step),
                        });
                    }
                }

                break;
        }
    }

    public static string OutcomeName(FaultOutcome o) => o switch
    {
        FaultOutcome.MmioExit => "mmio_exit",
        FaultOutcome.MemoryFaultExit => "memory_fault_exit",
        FaultOutcome.InjectIabt => "inject_iabt",
        FaultOutcome.InjectDabt => "inject_dabt",
        _ => o.ToString().ToLowerInvariant(),
    };

    private static Rule CauseRule(InputEvent? cause) => cause switch
    {
        MemslotSet => Rules.FlushMemslot,
        MemoryAttributesSet => Rules.AttributeZap,
        NoncoherentDmaChanged => Rules.NoncoherentDmaZap,
        GuestMemfdFallocated or GuestMemfdClosed => Rules.GmemInvalidate,
        GuestMemfdConverted => Rules.GmemConvert,
        _ => Rules.MmuNotifier,
    };

    private static string CauseText(InputEvent? cause) => cause switch
    {
        VmaUnmapped v => $"munmap of {v.Range}",
        VmaProtectionChanged v => $"mprotect of {v.Range}",
        VmaAdvised v => $"{v.Advice} on {v.Range}",
        VmaMapped v => $"a new mapping over {v.Range}",
        MmuNotifierInvalidated n => $"an MMU-notifier invalidation of [{n.Start}, {n.End})",
        MemslotSet m => m.Size == 0 ? $"the deletion of memslot {m.Slot}" : $"a change of memslot {m.Slot}",
        MemoryAttributesSet a => $"the attribute change of [{a.Gpa}, {Hex.Format(a.Gpa.Value + a.Size)}) to {(a.Private ? "private" : "shared")}",
        NoncoherentDmaChanged d => $"non-coherent DMA {(d.Attached ? "attach" : "detach")}",
        GuestMemfdFallocated g => $"a hole punched in guest_memfd fd {g.Fd}",
        GuestMemfdClosed g => $"closing guest_memfd fd {g.Fd}",
        GuestMemfdConverted c => $"converting guest_memfd fd {c.Fd} to {c.To.ToString().ToLowerInvariant()}",
        _ => "an invalidation",
    };
}
