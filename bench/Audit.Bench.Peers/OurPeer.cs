using Audit.Projections.Storage;
using Audit.Projections.Temporal;
using Npgsql;

namespace Audit.Bench.Peers;

/// <summary>
/// Our store as the host runs it: COPY BINARY with the fold form, interned explanation steps, the
/// optimistic version check and the temporal projections written in the append's transaction.
/// </summary>
internal sealed class OurPeer(NpgsqlDataSource dataSource) : IPeer
{
    private readonly EventStore _store = new(dataSource, TimeProvider.System, [new ProjectionStore(dataSource)]);

    public string Name => "ours";

    public async Task PrepareAsync(IReadOnlyList<Timed> warmUp, CancellationToken ct)
    {
        await Migrator.MigrateAsync(dataSource, ct);
        await BulkAsync("warm-bulk", warmUp, ct);
        await SessionsAsync("warm", warmUp, 100, ct);
        await ReadAsync("warm", ct);
    }

    /// <summary>Our bulk path is the append itself, in the bench ingest's 20,000-event batches.</summary>
    public Task BulkAsync(string stream, IReadOnlyList<Timed> events, CancellationToken ct) => SessionsAsync(stream, events, 20_000, ct);

    public async Task SessionsAsync(string stream, IReadOnlyList<Timed> events, int size, CancellationToken ct)
    {
        long version = 0;
        foreach (var chunk in events.Chunk(size))
        {
            var r = await _store.AppendAsync(stream, chunk.Select(e => new NewEvent(e.Event, e.TsNs)).ToList(), version, ct: ct);
            if (r.Status != AppendStatus.Appended)
            {
                throw new InvalidOperationException($"append to {stream} at version {version}: {r.Status}");
            }

            version = r.Version;
        }
    }

    public async Task<long> ReadAsync(string stream, CancellationToken ct)
    {
        long n = 0;
        await foreach (var _ in _store.ReadAsync(stream, ct: ct))
        {
            n++;
        }

        return n;
    }

    /// <summary>The event tables (events, interned steps, runs, batches); the projections are reported beside them.</summary>
    public async Task<long> EventBytesAsync(CancellationToken ct)
    {
        var (total, _, projections) = await Baselines.SizesAsync(dataSource, ct);
        return total - projections;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
