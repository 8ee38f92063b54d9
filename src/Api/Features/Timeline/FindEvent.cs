using Audit.Api.Features.Shared;
using Audit.Projections.Serialization;
using Audit.Projections.Storage;
using Audit.Projections.Timeline;
using MediatR;

namespace Audit.Api.Features.Timeline;

/// <summary>The next (or previous) event of a type after (before) a seq: the web UI's search for an event type.</summary>
public sealed record FindEvent(string Run, string Type, long After, bool Backwards) : IRequest<QueryResult<FoundEvent>>;

/// <summary>The body of GET /runs/{run}/find: the event's seq, stored type and time; with ?rule=, the page the decision is about when it has one.</summary>
public sealed record FoundEvent(string Run, long Seq, string Type, string? Ts)
{
    public string? Gpa { get; init; }
}

public sealed class FindEventHandler(EventStore store, EventDensity density) : IRequestHandler<FindEvent, QueryResult<FoundEvent>>
{
    public async Task<QueryResult<FoundEvent>> Handle(FindEvent request, CancellationToken cancellationToken)
    {
        // Users type the stored snake_case name or the trace's PascalCase one.
        var known = EventRegistry.FindStoredName(request.Type.Trim()) ?? EventRegistry.FindTraceName(request.Type.Trim());
        if (known is null)
        {
            return QueryResult<FoundEvent>.Bad($"'{request.Type}' is not an event type (e.g. stage2_unmapped or MemslotSet)");
        }

        var type = known.StoredName;

        if (await store.GetRunAsync(request.Run, cancellationToken) is null)
        {
            return QueryResult<FoundEvent>.NotFound($"no run '{request.Run}' (see `audit runs`)");
        }

        var found = await density.NextOfTypeAsync(request.Run, type, request.After, request.Backwards, cancellationToken);
        var direction = request.Backwards ? "before" : "after";
        return found is { } f
            ? QueryResult<FoundEvent>.Ok(new FoundEvent(request.Run, f.Seq, type, f.TsNs is { } ts ? Timestamps.Format(ts) : null))
            : QueryResult<FoundEvent>.NotFound($"no {type} event {direction} seq {request.After} in run '{request.Run}'");
    }
}
