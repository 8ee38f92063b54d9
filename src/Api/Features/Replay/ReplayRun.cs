using Audit.Api.Features.Ingest;
using Audit.Api.Features.Shared;
using Audit.Domain;
using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Projections.Serialization;
using Audit.Projections.Storage;
using MediatR;

namespace Audit.Api.Features.Replay;

/// <summary>Re-decide a run's inputs under another policy, in memory, and list the decisions that differ.</summary>
/// <param name="Policy">A policy id; empty with <paramref name="Set"/> means the policy the run was recorded under.</param>
/// <param name="Set">What-if edits of the inputs (WhatIf), applied to this replay only.</param>
public sealed record ReplayRun(string Run, string Policy, string? SaveAs = null, IReadOnlyList<string>? Set = null) : IRequest<QueryResult<ReplayView>>;

public sealed record DecisionView(string Outcome, int Errno, string? Gpa, ulong? Size, string? MemType, bool? Ipat, string? Perms);

public sealed record DecisionDifference(long InputSeq, string Input, string What, DecisionView Before, DecisionView After, string? PartsAt);

public sealed record ReplaySummary(int Decisions, int Differing, int Faults, int FaultsDiffering, int Memslots, int MemslotsDiffering, int Ioctls, int IoctlsDiffering);

/// <summary>The body of `replay --json` and POST /runs/{run}/replay.</summary>
public sealed record ReplayView(string Run, string Policy, string RecordedPolicy, ReplaySummary Summary, IReadOnlyList<DecisionDifference> Differences, string? SavedAs, IReadOnlyList<AppliedEdit> Edits);

public sealed class ReplayRunHandler(EventStore store, RunWriter writer) : IRequestHandler<ReplayRun, QueryResult<ReplayView>>
{
    public async Task<QueryResult<ReplayView>> Handle(ReplayRun request, CancellationToken cancellationToken)
    {
        var edits = new List<WhatIfEdit>();
        foreach (var text in request.Set ?? [])
        {
            if (!WhatIf.TryParse(text, out var edit, out var error))
            {
                return QueryResult<ReplayView>.Bad(error);
            }

            edits.Add(edit!);
        }

        var run = await store.GetRunAsync(request.Run, cancellationToken);
        if (run is null)
        {
            return QueryResult<ReplayView>.NotFound($"no run '{request.Run}' (see `audit runs`)");
        }

        var policyId = request.Policy is { Length: > 0 } p ? p : edits.Count > 0 ? run.Policy ?? "" : "";
        if (policyId.Length == 0)
        {
            return QueryResult<ReplayView>.Bad("--policy is required (or --set edits, which replay under the run's own policy)");
        }

        if (!Policies.TryParse(policyId, out var parsed, out var policyError))
        {
            return QueryResult<ReplayView>.Bad(policyError);
        }

        var policy = parsed!;

        var stored = new List<StoredEvent>();
        await foreach (var e in store.ReadAsync(request.Run, ct: cancellationToken))
        {
            stored.Add(e);
        }

        var arch = stored.Select(e => e.Event).OfType<HostDescribed>().FirstOrDefault()?.Arch;
        if (arch is { } a && a != policy.Arch)
        {
            return QueryResult<ReplayView>.Bad($"policy {policy.Id} is for {policy.Arch}, but run {request.Run} is {a}");
        }

        var (inputs, applied, editError) = WhatIf.Apply(edits, stored.Where(e => e.Event is InputEvent).Select(e => (e.Seq, (InputEvent)e.Event)).ToList());
        if (editError is not null)
        {
            return QueryResult<ReplayView>.Bad(editError);
        }

        var edited = inputs.ToDictionary(i => i.Seq, i => i.Input);
        var replayed = stored.Select(e => e.Event is InputEvent && edited[e.Seq] != e.Event ? e with { Event = edited[e.Seq] } : e).ToList();
        var differences = Compare(replayed, policy, out var summary);
        string? saved = null;
        if (request.SaveAs is { } name)
        {
            var notes = applied.SelectMany(x => x.Seqs.Select((seq, i) => (seq, Note: $"{x.Edit} (recorded: {x.Recorded[i]})")))
                .GroupBy(n => n.seq).ToDictionary(g => g.Key, g => string.Join("; ", g.Select(n => n.Note)));
            var traced = replayed.Where(e => e.Event is InputEvent)
                .Select(e => new TraceEvent(0, e.TsNs, (InputEvent)e.Event, WithNote(EventSerializer.ExtrasOf(e.Event, e.Payload), notes.GetValueOrDefault(e.Seq)))).ToList();
            var key = $"replay:{request.Run}:{run.EventCount}:{policy.Id}{string.Concat(edits.Select(x => ":" + x.Text))}";
            var written = await writer.AppendAsync(name, traced, key, null, policy.Id, cancellationToken);
            if (written.Error is not null)
            {
                return QueryResult<ReplayView>.Bad(written.Error);
            }

            saved = name;
        }

        return QueryResult<ReplayView>.Ok(new ReplayView(request.Run, policy.Id, run.Policy ?? "", summary, differences, saved, applied));
    }

    /// <summary>
    /// A saved what-if run explains itself: each edited input keeps, as the extra field `whatIf`,
    /// the edit and the value the trace recorded (kept and exported like any unknown field).
    /// </summary>
    private static IReadOnlyList<KeyValuePair<string, string>> WithNote(IReadOnlyList<KeyValuePair<string, string>> extras, string? note) =>
        note is null ? extras : [.. extras.Where(x => x.Key != "whatIf"), new("whatIf", System.Text.Json.JsonSerializer.Serialize(note))];

    /// <summary>Pairs each input's stored decision with the one the policy gives now.</summary>
    internal static List<DecisionDifference> Compare(IReadOnlyList<StoredEvent> stored, Policy policy, out ReplaySummary summary)
    {
        var before = stored.Select(e => e.Event).OfType<DerivedEvent>().Select(d => (Key: InputOf(d), d)).Where(x => x.Key is not null)
            .GroupBy(x => x.Key!.Value).ToDictionary(g => g.Key, g => g.Select(x => x.d).ToList());
        var state = Engine.Start(policy);
        var diffs = new List<DecisionDifference>();
        int decisions = 0, faults = 0, faultsDiff = 0, slots = 0, slotsDiff = 0, ioctls = 0, ioctlsDiff = 0;
        foreach (var e in stored.Where(e => e.Event is InputEvent))
        {
            var input = (InputEvent)e.Event;
            var after = Engine.Step(state, e.Seq, input);
            var old = before.GetValueOrDefault(e.Seq) ?? [];
            var a = after.FirstOrDefault(d => d is FaultResolved or MemslotDecided or IoctlDecided);
            var b = old.FirstOrDefault(d => d is FaultResolved or MemslotDecided or IoctlDecided);
            if (a is null && b is null)
            {
                continue;
            }

            decisions++;
            var diff = Difference(e.Seq, input, b, a);
            switch (a ?? b)
            {
                case FaultResolved:
                    faults++;
                    faultsDiff += diff is null ? 0 : 1;
                    break;
                case MemslotDecided:
                    slots++;
                    slotsDiff += diff is null ? 0 : 1;
                    break;
                default:
                    ioctls++;
                    ioctlsDiff += diff is null ? 0 : 1;
                    break;
            }

            if (diff is not null)
            {
                diffs.Add(diff);
            }
        }

        summary = new ReplaySummary(decisions, diffs.Count, faults, faultsDiff, slots, slotsDiff, ioctls, ioctlsDiff);
        return diffs;
    }

    internal static DecisionDifference? Difference(long seq, InputEvent input, DerivedEvent? before, DerivedEvent? after)
    {
        var b = View(before);
        var a = View(after);
        if (b == a)
        {
            return null;
        }

        var what = input switch
        {
            GuestFaulted f => $"{f.Access.ToString().ToLowerInvariant()} fault at {f.Gpa}",
            MemslotSet m => $"memslot {m.Slot} at {m.Gpa}",
            _ => EventRegistry.For(input).TraceName,
        };
        return new DecisionDifference(seq, EventRegistry.For(input).TraceName, what, b, a, PartsAt(Steps(before), Steps(after)));
    }

    internal static DecisionView View(DerivedEvent? d) => d switch
    {
        FaultResolved f => new DecisionView(
            FaultOutcomes.Name(f.Outcome), f.Errno, f.Mapping?.Gpa.ToString(), f.Mapping?.Size, f.Mapping?.MemType.ToString(), f.Mapping?.Ipat, f.Mapping is { } m ? Fmt.Perms(m.Perms) : null),
        MemslotDecided m => new DecisionView(m.PredictedErrno == 0 ? m.Change.ToString().ToLowerInvariant() : "refused", m.PredictedErrno, null, null, null, null, null),
        IoctlDecided i => new DecisionView(i.PredictedErrno == 0 ? "accepted" : "refused", i.PredictedErrno, null, null, null, null, null),
        _ => new DecisionView("none", 0, null, null, null, null, null),
    };

    internal static ValueList<ExplanationStep> Steps(DerivedEvent? d) => d switch
    {
        FaultResolved f => f.Explanation,
        MemslotDecided m => m.Explanation,
        IoctlDecided i => i.Explanation,
        _ => ValueList<ExplanationStep>.Empty,
    };

    /// <summary>The rule of the first explanation step where the two decisions part.</summary>
    private static string? PartsAt(ValueList<ExplanationStep> before, ValueList<ExplanationStep> after)
    {
        for (var i = 0; i < Math.Max(before.Count, after.Count); i++)
        {
            var b = i < before.Count ? before[i] : null;
            var a = i < after.Count ? after[i] : null;
            if (b?.Rule != a?.Rule || b?.Text != a?.Text)
            {
                return a?.Rule ?? b?.Rule;
            }
        }

        return null;
    }

    internal static long? InputOf(DerivedEvent d) => d switch
    {
        FaultResolved f => f.InputSeq,
        MemslotDecided m => m.InputSeq,
        IoctlDecided i => i.InputSeq,
        Stage2Unmapped u => u.CauseSeq,
        Stage2WriteProtected w => w.CauseSeq,
        DivergenceFound x => x.InputSeq,
        _ => null,
    };
}
