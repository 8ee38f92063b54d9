using Audit.Projections.Serialization;
using Audit.Projections.Storage;
using MediatR;

namespace Audit.Api.Features.Ingest;

/// <summary>POST /runs/{run}/events: an NDJSON batch, optionally idempotent and optimistic.</summary>
public sealed record AppendEvents(string Run, Stream Body, string? IdempotencyKey, long? ExpectedVersion) : IRequest<AppendOutcome>;

public sealed record AppendOutcome(AppendResult? Result, TraceError? Error);

public sealed class AppendEventsHandler(RunWriter writer) : IRequestHandler<AppendEvents, AppendOutcome>
{
    public async Task<AppendOutcome> Handle(AppendEvents request, CancellationToken cancellationToken)
    {
        // The body is size-limited by the host; buffer it so parsing never blocks on the network.
        var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, cancellationToken);
        buffer.Position = 0;
        var read = NdjsonTraceReader.Read("body", buffer);
        if (read.Error is not null)
        {
            return new AppendOutcome(null, read.Error);
        }

        var written = await writer.AppendAsync(
            request.Run, read.Events, request.IdempotencyKey is { } k ? "idem:" + k : null, request.ExpectedVersion, null, cancellationToken);
        if (written.Error is not null)
        {
            return new AppendOutcome(null, new TraceError("body", 1, written.Error));
        }

        var result = written.Result!;
        return new AppendOutcome(result, null);
    }
}
