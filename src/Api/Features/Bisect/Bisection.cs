using Audit.Api.Features.Replay;
using Audit.Domain;
using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Api.Features.Bisect;

/// <summary>One span of releases and the decision they all give.</summary>
public sealed record DecisionSpan(string From, string To, string Decision, string Policy);

/// <summary>Where the decision changes: the first release of the new span, the decisions either side, and the rules responsible.</summary>
public sealed record DecisionChange(string At, string Before, string After, IReadOnlyList<string> Rules);

/// <summary>A guest range (or memslot / ioctl) whose decision differs between releases; <see cref="Seqs"/> are the inputs that share it.</summary>
public sealed record BisectRow(string What, IReadOnlyList<long> Seqs, IReadOnlyList<DecisionSpan> Spans, IReadOnlyList<DecisionChange> Changes);

/// <summary>
/// Re-decides a run's inputs under every release span of its flavour, in memory (the replay path:
/// Engine.Step from a fresh state per release), and reports each input whose decision differs
/// between releases. Pure: inputs in, rows out.
/// </summary>
public static class Bisection
{
    private sealed record Decided(DecisionView View, IReadOnlySet<string> Rules, ValueList<ExplanationStep> Steps);

    public static List<BisectRow> Run(
        IReadOnlyList<(long Seq, InputEvent Input)> inputs, IReadOnlyList<Release> releases, (ulong Lo, ulong Hi)? gpa = null, Action<string>? progress = null)
    {
        // Decisions are interned by what they decided and the rules that fired, in order: a release keeps
        // one int per input, so a large run costs little per release.
        var interned = new Dictionary<(DecisionView, string), int>();
        var decided = new List<Decided>();
        var ids = new int[releases.Count][];
        for (var r = 0; r < releases.Count; r++)
        {
            var release = releases[r];
            ids[r] = DecideAll(inputs, release.Policy, interned, decided, done => progress?.Invoke($"bisect: {release}: {done}/{inputs.Count} inputs"));
            progress?.Invoke($"bisect: {release} decided ({r + 1}/{releases.Count} releases, {inputs.Count} inputs)");
        }

        var rows = new List<BisectRow>();
        for (var i = 0; i < inputs.Count; i++)
        {
            var column = ids.Select(x => x[i]).ToList();
            if (column.Select(id => id < 0 ? null : decided[id].View).Distinct().Count() <= 1 || !InRange(inputs[i].Input, gpa))
            {
                continue;
            }

            rows.Add(Row(inputs[i], column.Select(id => id < 0 ? null : decided[id]).ToList(), releases));
        }

        // Inputs with the same label and the same story (e.g. faults on one BAR block) are one row.
        return rows.GroupBy(r => (r.What, Story: string.Join(";", r.Spans.Select(s => $"{s.From}:{s.Decision}"))))
            .Select(g => g.First() with { Seqs = g.SelectMany(r => r.Seqs).ToList() })
            .ToList();
    }

    private static int[] DecideAll(
        IReadOnlyList<(long Seq, InputEvent Input)> inputs, Policy policy, Dictionary<(DecisionView, string), int> interned, List<Decided> decided, Action<int> tick)
    {
        const int TickEvery = 1_000_000;
        var state = Engine.Start(policy);
        var column = new int[inputs.Count];
        for (var i = 0; i < inputs.Count; i++)
        {
            if (i > 0 && i % TickEvery == 0)
            {
                tick(i);
            }

            var derived = Engine.Step(state, inputs[i].Seq, inputs[i].Input);
            var d = derived.FirstOrDefault(x => x is FaultResolved or MemslotDecided or IoctlDecided);
            if (d is null)
            {
                column[i] = -1;
                continue;
            }

            var view = ReplayRunHandler.View(d);
            var steps = ReplayRunHandler.Steps(d);
            var key = (view, string.Join(",", steps.Select(s => s.Rule)));
            if (!interned.TryGetValue(key, out var id))
            {
                id = decided.Count;
                interned[key] = id;
                decided.Add(new Decided(view, steps.Select(s => s.Rule).ToHashSet(StringComparer.Ordinal), steps));
            }

            column[i] = id;
        }

        return column;
    }

    private static BisectRow Row((long Seq, InputEvent Input) input, List<Decided?> byRelease, IReadOnlyList<Release> releases)
    {
        var spans = new List<DecisionSpan>();
        var changes = new List<DecisionChange>();
        for (var r = 0; r < releases.Count; r++)
        {
            var text = Describe(byRelease[r]);
            if (spans.Count > 0 && spans[^1].Decision == text)
            {
                spans[^1] = spans[^1] with { To = releases[r].To.ToString() };
                continue;
            }

            if (spans.Count > 0)
            {
                changes.Add(new DecisionChange(releases[r].From.ToString(), spans[^1].Decision, text, Responsible(byRelease[r - 1], byRelease[r], releases[r])));
            }

            spans.Add(new DecisionSpan(releases[r].From.ToString(), releases[r].To.ToString(), text, releases[r].Policy.Id));
        }

        return new BisectRow(Label(input.Input, byRelease), [input.Seq], spans, changes);
    }

    /// <summary>
    /// The rules behind a change: those whose kernel range starts or ends at the release and that
    /// fired in either decision; else (the change follows from an earlier decision, e.g. a memslot
    /// that now exists) the rule where the two explanations part; else the rules that fired on one side only.
    /// </summary>
    private static IReadOnlyList<string> Responsible(Decided? before, Decided? after, Release at)
    {
        var b = before?.Rules ?? new HashSet<string>();
        var a = after?.Rules ?? new HashSet<string>();
        var changing = Releases.ChangingAt(at.Policy.Flavour, at.From).Where(id => a.Contains(id) || b.Contains(id)).Order(StringComparer.Ordinal).ToList();
        if (changing.Count > 0)
        {
            return changing;
        }

        var bs = before?.Steps ?? ValueList<ExplanationStep>.Empty;
        var steps = after?.Steps ?? ValueList<ExplanationStep>.Empty;
        for (var i = 0; i < Math.Max(bs.Count, steps.Count); i++)
        {
            var x = i < bs.Count ? bs[i] : null;
            var y = i < steps.Count ? steps[i] : null;
            if (x?.Rule != y?.Rule || x?.Text != y?.Text)
            {
                return [y?.Rule ?? x!.Rule];
            }
        }

        return a.Except(b).Concat(b.Except(a)).Order(StringComparer.Ordinal).ToList();
    }

    private static string Describe(Decided? d) => d is null ? "no decision" : ReplayCommand.Show(d.View);

    /// <summary>A fault is labelled by the block it maps in the newest release that maps it (else its page); others by what they are.</summary>
    private static string Label(InputEvent input, List<Decided?> byRelease) => input switch
    {
        GuestFaulted f => byRelease.LastOrDefault(d => d?.View.Gpa is not null) is { View: { Gpa: { } g, Size: { } size } }
            ? $"{g} {Fmt.Size(size)}"
            : $"{f.Gpa.AlignDown(0x1000)} 4K",
        MemslotSet m => $"memslot {m.Slot} at {m.Gpa}",
        GuestMemfdCreated g => $"KVM_CREATE_GUEST_MEMFD fd {g.Fd}",
        MemoryAttributesSet a => $"KVM_SET_MEMORY_ATTRIBUTES at {a.Gpa}",
        GuestMemfdConverted c => $"guest_memfd {c.Fd} conversion at {Fmt.Hex(c.Offset)}",
        _ => input.GetType().Name,
    };

    private static bool InRange(InputEvent input, (ulong Lo, ulong Hi)? gpa) => gpa is not { } g || input switch
    {
        GuestFaulted f => f.Gpa.Value >= g.Lo && f.Gpa.Value < g.Hi,
        MemslotSet m => m.Gpa.Value < g.Hi && m.Gpa.Value + Math.Max(m.Size, 1) > g.Lo,
        MemoryAttributesSet a => a.Gpa.Value < g.Hi && a.Gpa.Value + Math.Max(a.Size, 1) > g.Lo,
        _ => false,
    };
}
