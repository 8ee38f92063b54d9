using Audit.Projections.Serialization;
using Audit.Projections.Storage;
using MediatR;

namespace Audit.Api.Features.Runs;

public sealed record ListRuns : IRequest<IReadOnlyList<RunView>>;

/// <summary>One run as `runs --json` and GET /runs show it. events counts recorded inputs; derived counts the engine's decisions.</summary>
public sealed record RunView(string Run, long Events, long Derived, long LastSeq, string? FirstTs, string? LastTs, string? Host, string? Policy);

public sealed class ListRunsHandler(EventStore store) : IRequestHandler<ListRuns, IReadOnlyList<RunView>>
{
    public async Task<IReadOnlyList<RunView>> Handle(ListRuns request, CancellationToken cancellationToken)
    {
        var runs = await store.ListRunsAsync(cancellationToken);
        return runs.Select(r => new RunView(
            r.RunId, r.InputCount, r.EventCount - r.InputCount, r.EventCount,
            r.FirstTsNs is { } f ? Timestamps.Format(f) : null, r.LastTsNs is { } l ? Timestamps.Format(l) : null, r.Host, r.Policy)).ToList();
    }
}
