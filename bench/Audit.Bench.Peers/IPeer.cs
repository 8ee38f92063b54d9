using Audit.Domain.Events;

namespace Audit.Bench.Peers;

/// <summary>One event store under measurement, driven through the same four operations on the same events.</summary>
internal interface IPeer : IAsyncDisposable
{
    string Name { get; }

    /// <summary>Creates its tables and warms its code paths on a stream of its own (not timed).</summary>
    Task PrepareAsync(IReadOnlyList<Timed> warmUp, CancellationToken ct);

    /// <summary>The store's bulk path for a new stream.</summary>
    Task BulkAsync(string stream, IReadOnlyList<Timed> events, CancellationToken ct);

    /// <summary>Appends in sessions (transactions) of <paramref name="size"/> events each.</summary>
    Task SessionsAsync(string stream, IReadOnlyList<Timed> events, int size, CancellationToken ct);

    /// <summary>Reads a whole stream back as events; returns how many.</summary>
    Task<long> ReadAsync(string stream, CancellationToken ct);

    /// <summary>Bytes of the store's event tables and their indexes (after the bulk stream only).</summary>
    Task<long> EventBytesAsync(CancellationToken ct);
}

/// <summary>An event with its trace time, as the bench run stored it.</summary>
internal sealed record Timed(RunEvent Event, long? TsNs);
