using Audit.Api.Features.Shared;
using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Projections.Storage;
using MediatR;

namespace Audit.Api.Features.Lint;

/// <summary>Lint a stored run: judge the decisions recorded for it (GET /runs/{run}/lint).</summary>
public sealed record GetLint(string Run) : IRequest<QueryResult<LintReport>>;

public sealed class GetLintHandler(EventStore store) : IRequestHandler<GetLint, QueryResult<LintReport>>
{
    public async Task<QueryResult<LintReport>> Handle(GetLint request, CancellationToken cancellationToken)
    {
        var run = await store.GetRunAsync(request.Run, cancellationToken);
        if (run is null)
        {
            return QueryResult<LintReport>.NotFound($"no run '{request.Run}' (see `audit runs`)");
        }

        var events = new List<Recorded>();
        await foreach (var e in store.ReadAsync(request.Run, ct: cancellationToken))
        {
            events.Add(new Recorded(e.Seq, e.TsNs, e.Event));
        }

        return QueryResult<LintReport>.Ok(Linter.Lint(request.Run, PolicyOf(run.Policy, events), events));
    }

    /// <summary>The policy the run was decided under (its recorded decisions name it), else the host's default.</summary>
    internal static Policy PolicyOf(string? recorded, IReadOnlyList<Recorded> events) =>
        (recorded is null ? null : Policies.Find(recorded))
        ?? (events.Select(e => e.Event).OfType<HostDescribed>().FirstOrDefault() is { } host ? Policies.DefaultFor(host) : Policies.Find("arm64/6.18")!);
}
