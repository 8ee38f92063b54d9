using JasperFx;
using JasperFx.Events;
using Marten;
using Npgsql;

namespace Audit.Bench.Peers;

/// <summary>
/// Marten as it ships, configured as its documentation advises for speed: string stream keys (our runs
/// are named), Quick append mode, System.Text.Json, each of our event types mapped to its stored name.
/// </summary>
internal sealed class MartenPeer(string connectionString, string schema) : IPeer
{
    private readonly DocumentStore _store = DocumentStore.For(o =>
    {
        o.Connection(connectionString);
        o.DatabaseSchemaName = schema;
        o.AutoCreateSchemaObjects = AutoCreate.All;
        o.Events.StreamIdentity = StreamIdentity.AsString;
        o.Events.AppendMode = EventAppendMode.Quick;
        o.UseSystemTextJsonForSerialization(configure: j => j.Converters.Add(new PayloadJson()));
        foreach (var t in Projections.Serialization.EventRegistry.Types)
        {
            o.Events.MapEventType(t.Clr, t.StoredName);
        }
    });

    public string Name => "Marten";

    public async Task PrepareAsync(IReadOnlyList<Timed> warmUp, CancellationToken ct)
    {
        await _store.Storage.ApplyAllConfiguredChangesToDatabaseAsync();
        await BulkAsync("warm-bulk", warmUp, ct);
        await SessionsAsync("warm", warmUp, 100, ct);
        await ReadAsync("warm", ct);
    }

    public Task BulkAsync(string stream, IReadOnlyList<Timed> events, CancellationToken ct) =>
        _store.BulkInsertEventsAsync([StreamAction.Start((IEventRegistry)_store.Options.Events, stream, Objects(events))], 20_000, ct);

    public async Task SessionsAsync(string stream, IReadOnlyList<Timed> events, int size, CancellationToken ct)
    {
        foreach (var chunk in events.Chunk(size))
        {
            await using var session = _store.LightweightSession();
            session.Events.Append(stream, Objects(chunk));
            await session.SaveChangesAsync(ct);
        }
    }

    public async Task<long> ReadAsync(string stream, CancellationToken ct)
    {
        await using var session = _store.QuerySession();
        return (await session.Events.FetchStreamAsync(stream, token: ct)).Count;
    }

    public async Task<long> EventBytesAsync(CancellationToken ct)
    {
        await using var ds = NpgsqlDataSource.Create(connectionString);
        await using var cmd = ds.CreateCommand($"select pg_total_relation_size('\"{schema}\".mt_events') + pg_total_relation_size('\"{schema}\".mt_streams')");
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    public ValueTask DisposeAsync() => _store.DisposeAsync();

    private static object[] Objects(IEnumerable<Timed> events) => events.Select(e => (object)e.Event).ToArray();
}
