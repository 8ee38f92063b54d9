using Audit.Projections.Serialization;
using Audit.Projections.Storage;
using MediatR;

namespace Audit.Api.Features.Ingest;

/// <summary>POST /runs/{run}/events: an NDJSON batch, optionally idempotent and optimistic.</summary>
public sealed record AppendEvents(string Run, Stream Body, string? IdempotencyKey, long? ExpectedVersion) : IRequest<AppendOutcome>;

public sealed record AppendOutcome(AppendResult? Result, TraceError? Error);

public sealed class AppendEventsHandler(EventStore store) : IRequestHandler<AppendEvents, AppendOutcome>
{
    public async Task<AppendOutcome> Handle(AppendEvents request, CancellationToken cancellationToken)
    {
        var read = NdjsonTraceReader.Read("body", request.Body);
        if (read.Error is not null)
        {
            return new AppendOutcome(null, read.Error);
        }

        var result = await store.AppendAsync(
            request.Run,
            read.Events.Select(e => new NewEvent(e.Event, e.TsNs, e.Extras)).ToList(),
            request.ExpectedVersion,
            request.IdempotencyKey is { } k ? "idem:" + k : null,
            IngestFilesHandler.RunInfoOf(read.Events),
            cancellationToken);
        return new AppendOutcome(result, null);
    }
}
