using Audit.Api.Features.Shared;
using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Projections.PageTable;
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
public sealed record WhyView(string Run, string Gpa, long At, WhyMapping? Mapping, string Outcome, IReadOnlyList<WhyStep> Explanation, WhyChange? LastChange);

public sealed class GetWhyHandler(EventStore store) : IRequestHandler<GetWhy, QueryResult<WhyView>>
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

        var view = new Stage2View();
        await foreach (var e in store.ReadAsync(request.Run, toSeq: at, ct: cancellationToken))
        {
            view.Apply(e.Recorded);
        }

        return QueryResult<WhyView>.Ok(Answer(request.Run, gpa, at.Value, view));
    }

    private static WhyView Answer(string run, Domain.Addresses.Gpa gpa, long at, Stage2View view)
    {
        if (view.Rows.TryFind(gpa.Value, out var row))
        {
            var r = row.Value;
            var block = gpa.AlignDown(r.Granule);
            var mapping = new WhyMapping(block.ToString(), r.Granule, r.MemType.ToString(), r.Ipat, Fmt.Perms(r.Perms), r.Policy, r.DecidedAt);
            var steps = r.Decision.Explanation.Concat(r.Later).Select(Step).ToList();
            var outcome = r.Decision.Outcome == FaultOutcome.Relaxed ? "relaxed" : "mapped";
            return new WhyView(run, gpa.ToString(), at, mapping, outcome, steps, new WhyChange(r.LastChangeSeq, r.LastChangeType));
        }

        if (view.Gaps.TryFind(gpa.Value, out var gap))
        {
            return new WhyView(run, gpa.ToString(), at, null, gap.Value.Outcome, gap.Value.Explanation.Select(Step).ToList(), new WhyChange(gap.Value.Seq, gap.Value.Type));
        }

        return new WhyView(run, gpa.ToString(), at, null, "never_faulted", [], null);
    }

    internal static WhyStep Step(ExplanationStep s) => new(s.Rule, s.Text, s.Facts.Select(f => new WhyFact(f.Name, f.Value, f.Seq)).ToList());
}
