using Audit.Api.Features.Replay;
using Audit.Api.Features.Shared;
using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Projections.Storage;
using MediatR;

namespace Audit.Api.Features.Diff;

/// <summary>Align two runs of the same workload (decisions per page and per memslot, in order) and report where they differ.</summary>
public sealed record DiffRuns(string A, string B) : IRequest<QueryResult<DiffView>>;

public sealed record DiffSide(long Seq, DecisionView Decision);

public sealed record DiffEntry(string Key, int Nth, DiffSide? A, DiffSide? B, string? PartsAt);

public sealed record InputDifference(string What, string? A, string? B);

/// <summary>The body of `diff --json` and GET /diff.</summary>
public sealed record DiffView(string A, string B, string? PolicyA, string? PolicyB, int Compared, int Differing, DiffEntry? First, IReadOnlyList<DiffEntry> Differences, IReadOnlyList<InputDifference> Inputs);

public sealed class DiffRunsHandler(EventStore store) : IRequestHandler<DiffRuns, QueryResult<DiffView>>
{
    private sealed record Decided(string Key, long Seq, DerivedEvent Event);

    public async Task<QueryResult<DiffView>> Handle(DiffRuns request, CancellationToken cancellationToken)
    {
        var runA = await store.GetRunAsync(request.A, cancellationToken);
        var runB = await store.GetRunAsync(request.B, cancellationToken);
        if (runA is null || runB is null)
        {
            return QueryResult<DiffView>.NotFound($"no run '{(runA is null ? request.A : request.B)}' (see `audit runs`)");
        }

        var (decA, inA) = await Load(request.A, cancellationToken);
        var (decB, inB) = await Load(request.B, cancellationToken);
        var byKeyA = decA.GroupBy(d => d.Key).ToDictionary(g => g.Key, g => g.ToList());
        var byKeyB = decB.GroupBy(d => d.Key).ToDictionary(g => g.Key, g => g.ToList());
        var diffs = new List<DiffEntry>();
        var compared = 0;
        foreach (var key in byKeyA.Keys.Union(byKeyB.Keys).Order(StringComparer.Ordinal))
        {
            var la = byKeyA.GetValueOrDefault(key) ?? [];
            var lb = byKeyB.GetValueOrDefault(key) ?? [];
            for (var i = 0; i < Math.Max(la.Count, lb.Count); i++)
            {
                compared++;
                var a = i < la.Count ? la[i] : null;
                var b = i < lb.Count ? lb[i] : null;
                var d = ReplayRunHandler.Difference(a?.Seq ?? b!.Seq, new VmCreated(VmType.Default, null), a?.Event, b?.Event);
                if (d is null && a is not null && b is not null)
                {
                    continue;
                }

                diffs.Add(new DiffEntry(key, i + 1, a is null ? null : new DiffSide(a.Seq, d?.Before ?? Same(a)), b is null ? null : new DiffSide(b.Seq, d?.After ?? Same(b)), d?.PartsAt));
            }
        }

        var first = diffs.OrderBy(d => d.A?.Seq ?? long.MaxValue).ThenBy(d => d.B?.Seq ?? long.MaxValue).FirstOrDefault();
        var inputs = InputDifferences(inA, inB).ToList();
        if (runA.Policy != runB.Policy)
        {
            inputs.Insert(0, new InputDifference("policy", runA.Policy, runB.Policy));
        }

        return QueryResult<DiffView>.Ok(new DiffView(request.A, request.B, runA.Policy, runB.Policy, compared, diffs.Count, first, diffs, inputs));
    }

    private static DecisionView Same(Decided d) => ReplayRunHandler.Difference(d.Seq, new VmCreated(VmType.Default, null), null, d.Event)!.After;

    private async Task<(List<Decided> Decisions, List<InputEvent> Inputs)> Load(string run, CancellationToken ct)
    {
        var inputs = new Dictionary<long, InputEvent>();
        var decisions = new List<Decided>();
        await foreach (var e in store.ReadAsync(run, ct: ct))
        {
            switch (e.Event)
            {
                case InputEvent i:
                    inputs[e.Seq] = i;
                    break;
                case FaultResolved f when inputs.GetValueOrDefault(f.InputSeq) is GuestFaulted g:
                    decisions.Add(new Decided("gpa " + g.Gpa.AlignDown(4096), e.Seq, f));
                    break;
                case MemslotDecided m when inputs.GetValueOrDefault(m.InputSeq) is MemslotSet s:
                    decisions.Add(new Decided($"memslot {s.AsId}:{s.Slot}", e.Seq, m));
                    break;
            }
        }

        return (decisions, inputs.Values.ToList());
    }

    /// <summary>The recorded facts that differ: host, capabilities, and each VMA and memslot request.</summary>
    private static IEnumerable<InputDifference> InputDifferences(List<InputEvent> a, List<InputEvent> b)
    {
        string? Host(List<InputEvent> l) => l.OfType<HostDescribed>().Select(h => $"{h.Arch} {h.Kernel} fwb={h.Caps.Fwb} dic={h.Caps.CacheDic} selfSnoop={h.Caps.SelfSnoop} tdp={h.Caps.Tdp}").FirstOrDefault();
        if (Host(a) != Host(b))
        {
            yield return new InputDifference("host", Host(a), Host(b));
        }

        Dictionary<string, string> Vmas(List<InputEvent> l) => l.OfType<VmaMapped>().GroupBy(v => v.Backing.Path ?? v.Range.Start.ToString())
            .ToDictionary(g => g.Key, g => string.Join("; ", g.Select(v => $"{Fmt.Perms(v.Prot)} {Fmt.Flags(v.Flags)} {v.MemType} linearMap={v.Backing.LinearMap}")));
        foreach (var d in Compare("vma", Vmas(a), Vmas(b)))
        {
            yield return d;
        }

        Dictionary<string, string> Slots(List<InputEvent> l) => l.OfType<MemslotSet>().GroupBy(m => $"{m.AsId}:{m.Slot}")
            .ToDictionary(g => g.Key, g => string.Join("; ", g.Select(m => $"gpa {m.Gpa} size {Fmt.Hex(m.Size)} flags {Fmt.Flags(m.Flags)}")));
        foreach (var d in Compare("memslot", Slots(a), Slots(b)))
        {
            yield return d;
        }

        Dictionary<string, string> Caps(List<InputEvent> l) => l.OfType<CapabilityEnabled>().GroupBy(c => c.Cap)
            .ToDictionary(g => g.Key, g => string.Join("; ", g.Select(c => string.Join(",", c.Args.Select(x => $"{x.Name}={string.Join("|", x.Values)}")))));
        foreach (var d in Compare("capability", Caps(a), Caps(b)))
        {
            yield return d;
        }
    }

    private static IEnumerable<InputDifference> Compare(string kind, Dictionary<string, string> a, Dictionary<string, string> b)
    {
        foreach (var key in a.Keys.Union(b.Keys).Order(StringComparer.Ordinal))
        {
            var va = a.GetValueOrDefault(key);
            var vb = b.GetValueOrDefault(key);
            if (va != vb)
            {
                yield return new InputDifference($"{kind} {key}", va, vb);
            }
        }
    }
}
