using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Domain.Stage2;

/// <summary>Observed kernel behaviour compared with the model: each disagreement is a DivergenceFound.</summary>
internal static class Observation
{
    public static IReadOnlyList<DerivedEvent> Mapping(RunState s, long seq, Stage2MappingObserved o)
    {
        var observed = $"{o.MemType?.ToString() ?? "?"}{(o.Ipat == true ? "+IPAT" : "")} {Fmt.Size(o.Size)} {Fmt.Perms(o.Perms)} at {o.Gpa}";
        if (!s.Stage2.TryFind(o.Gpa.Value, out var e))
        {
            return [new DivergenceFound(seq, $"not mapped at {o.Gpa}{Why(s, o.Gpa.Gfn)}", observed)];
        }

        var m = e.Value;
        var model = $"{m.MemType}{(m.Ipat == true ? "+IPAT" : "")} {Fmt.Size(m.Granule)} {Fmt.Perms(m.Perms)} at {o.Gpa.AlignDown(m.Granule)} (decided at seq {m.DecidedSeq})";
        var differs = m.Granule != o.Size
            || (o.MemType is { } mt && mt != m.MemType)
            || (o.Ipat is { } ipat && m.Ipat is { } mi && ipat != mi)
            || o.Perms != m.Perms;
        return differs ? [new DivergenceFound(seq, model, observed)] : [];
    }

    public static IReadOnlyList<DerivedEvent> MemoryFault(RunState s, long seq, MemoryFaultExitObserved x)
    {
        if (s.PendingMemoryFaults.ContainsKey(x.Gpa.Gfn))
        {
            return [];
        }

        var model = s.Stage2.TryFind(x.Gpa.Value, out var e)
            ? $"no memory-fault exit at {x.Gpa}: mapped {e.Value.MemType} {Fmt.Size(e.Value.Granule)} {Fmt.Perms(e.Value.Perms)} (seq {e.Value.DecidedSeq})"
            : $"no memory-fault exit at {x.Gpa}{Why(s, x.Gpa.Gfn)}";
        return [new DivergenceFound(seq, model, $"KVM_RUN returned -EFAULT as a memory fault at {x.Gpa} size {Fmt.Size(x.Size)} flags {Fmt.Hex(x.Flags)}")];
    }

    /// <summary>What the model last decided at that page, when it refused a fault there.</summary>
    private static string Why(RunState s, ulong gfn) =>
        s.Refusals.TryGetValue(gfn, out var r) ? $": the model's last fault there (seq {r.Seq}) was {r.Outcome}: {r.Reason}" : s.SlotAt(new Audit.Domain.Addresses.Gpa(gfn << 12)) is null ? ": no memslot covers it in the model" : ": the model saw no fault there";
}
