using Audit.Api.Features.Shared;
using Audit.Domain;
using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Projections.Temporal;
using Audit.Projections.Storage;
using MediatR;

namespace Audit.Api.Features.Why;

/// <summary>Why is this guest address mapped as it is (or not at all) at that point?</summary>
public sealed record GetWhy(string Run, string Gpa, string? At) : IRequest<QueryResult<WhyView>>;

public sealed record WhyMapping(string Gpa, ulong Size, string MemType, bool? Ipat, string Perms, string Policy, long DecidedAt);

public sealed record WhyFact(string Name, string Value, long? Seq);

public sealed record WhyStep(string Rule, string Text, IReadOnlyList<WhyFact> Facts);

public sealed record WhyChange(long Seq, string Type);

/// <summary>The body of `why --json` and GET /runs/{run}/why (interfaces.md).</summary>
/// <param name="HostInferred">the run's host when ingest inferred it from the trace (no HostDescribed event): the model decided under that guess.</param>
public sealed record WhyView(string Run, string Gpa, long At, WhyMapping? Mapping, string Outcome, IReadOnlyList<WhyStep> Explanation, WhyChange? LastChange, string? HostInferred = null);

public sealed class GetWhyHandler(EventStore store, TemporalQueries queries) : IRequestHandler<GetWhy, QueryResult<WhyView>>
{
    public async Task<QueryResult<WhyView>> Handle(GetWhy request, CancellationToken cancellationToken)
    {
        if (!PointInTime.TryParseGpa(request.Gpa, out var gpa))
        {
            return QueryResult<WhyView>.Bad($"'{request.Gpa}' is not a guest physical address (hex like 0x40000200000, or decimal)");
        }

        var run = await store.GetRunAsync(request.Run, cancellationToken);
        if (run is null)
        {
            return QueryResult<WhyView>.NotFound($"no run '{request.Run}' (see `audit runs`)");
        }

        var (at, error) = await PointInTime.ResolveAsync(store, request.Run, request.At, run.EventCount, cancellationToken);
        if (at is null)
        {
            return QueryResult<WhyView>.Bad(error!);
        }

        var inferred = run.Host is { } h && h.EndsWith(" (inferred)", StringComparison.Ordinal) ? h[..^" (inferred)".Length] : null;
        var row = await queries.RowAtAsync(request.Run, RunProjections.Stage2Name, gpa.Value, at.Value, cancellationToken);
        if (row is null)
        {
            return QueryResult<WhyView>.Ok(new WhyView(request.Run, gpa.ToString(), at.Value, null, "never_faulted", [], null, inferred));
        }

        var d = Stage2Text.Read(row.Data, row.FromSeq);
        var change = new WhyChange(d.LastChange, d.LastChangeType!);
        if (d.IsMapped)
        {
            var wp = d.WriteProtectedAt ?? ValueList<long>.Empty;
            var decision = (FaultResolved)(await store.GetAsync(request.Run, [d.DecidedAt!.Value], cancellationToken))[d.DecidedAt.Value].Event;
            var steps = decision.Explanation.Concat(wp.Select(seq => Explanations.WriteProtected(seq, d.WriteProtectRule))).Select(Step).ToList();
            var granule = d.Granule!.Value;
            var mapping = new WhyMapping(gpa.AlignDown(granule).ToString(), granule, d.MemType!.Value.ToString(), d.Ipat, Fmt.Perms(d.Perms!.Value), d.Policy!, d.DecidedAt.Value);
            var outcome = decision.Outcome == FaultOutcome.Relaxed ? "relaxed" : "mapped";
            return QueryResult<WhyView>.Ok(new WhyView(request.Run, gpa.ToString(), at.Value, mapping, outcome, steps, change, inferred));
        }

        if (d.LastChangeType == "Stage2Unmapped")
        {
            var cause = (await store.GetAsync(request.Run, [d.CauseSeq!.Value], cancellationToken)).GetValueOrDefault(d.CauseSeq.Value)?.Event as InputEvent;
            var step = Explanations.Unmapped(row.Lo, row.Hi, d.CauseSeq.Value, cause, d.LastChange, d.CauseRule);
            return QueryResult<WhyView>.Ok(new WhyView(request.Run, gpa.ToString(), at.Value, null, d.Outcome!, [Step(step)], change, inferred));
        }

        var refusal = (FaultResolved)(await store.GetAsync(request.Run, [d.LastChange], cancellationToken))[d.LastChange].Event;
        return QueryResult<WhyView>.Ok(new WhyView(request.Run, gpa.ToString(), at.Value, null, d.Outcome!, refusal.Explanation.Select(Step).ToList(), change, inferred));
    }

    internal static WhyStep Step(ExplanationStep s) => new(s.Rule, s.Text, s.Facts.Select(f => new WhyFact(f.Name, f.Value, f.Seq)).ToList());
}
