using Audit.Projections.Storage;
using Npgsql;

namespace Audit.Projections.Temporal;

/// <summary>
/// Rebuilds a run's projections from its events into a new generation beside the active one, so
/// readers are never blocked: chunks of events are folded and written with their checkpoint in
/// one transaction each (a crash resumes from the checkpoint), the tail is folded under the run's
/// row lock (appends wait; nothing can be skipped), then the generation swaps in one update.
/// </summary>
public sealed class Rebuilder(EventStore store, int chunk = 20_000)
{
    public sealed record Result(string RunId, int Generation, long Events, bool Resumed);

    public async Task<Result> RebuildAsync(string runId, Action<long, long>? progress = null, CancellationToken ct = default)
    {
        var ds = store.DataSource;
        int gen;
        long checkpoint;
        bool resumed;
        await using (var conn = await ds.OpenConnectionAsync(ct))
        {
            await ProjectionStore.ActiveGenerationAsync(conn, null, runId, ct, create: true);
            await using var cmd = new NpgsqlCommand("""
                update projection_generations set building_gen = coalesce(building_gen, active_gen + 1) where run_id = $1
                returning building_gen,
                    (select seq from projection_checkpoints c where c.run_id = $1 and c.projection = 'stage2' and c.gen = projection_generations.building_gen)
                """, conn);
            cmd.Parameters.Add(new() { Value = runId });
            await using var r = await cmd.ExecuteReaderAsync(ct);
            await r.ReadAsync(ct);
            gen = r.GetInt32(0);
            resumed = !r.IsDBNull(1);
            checkpoint = resumed ? r.GetInt64(1) : 0;
        }

        RunProjections view;
        await using (var conn = await ds.OpenConnectionAsync(ct))
        {
            if (!resumed)
            {
                // A building generation without a checkpoint holds nothing that counts.
                await using var clear = new NpgsqlCommand("delete from projection_rows where run_id = $1 and gen = $2", conn);
                clear.Parameters.Add(new() { Value = runId });
                clear.Parameters.Add(new() { Value = gen });
                await clear.ExecuteNonQueryAsync(ct);
            }

            view = await ProjectionStore.LoadOpenAsync(conn, null, runId, gen, ct);
        }

        var version = (await store.GetRunAsync(runId, ct))?.EventCount ?? 0;
        while (checkpoint < version - chunk)
        {
            checkpoint = await FoldAsync(runId, gen, view, checkpoint, checkpoint + chunk, null, ct);
            progress?.Invoke(checkpoint, version);
        }

        // The tail, under the run's row lock: appends wait, so the swap cannot miss an event.
        await using (var conn = await ds.OpenConnectionAsync(ct))
        await using (var tx = await conn.BeginTransactionAsync(ct))
        {
            await using (var lockRun = new NpgsqlCommand("select version from runs where run_id = $1 for update", conn, tx))
            {
                lockRun.Parameters.Add(new() { Value = runId });
                version = (long?)await lockRun.ExecuteScalarAsync(ct) ?? 0;
            }

            checkpoint = await FoldAsync(runId, gen, view, checkpoint, version, (conn, tx), ct);
            await using (var swap = new NpgsqlCommand("update projection_generations set active_gen = $2, building_gen = null where run_id = $1", conn, tx))
            {
                swap.Parameters.Add(new() { Value = runId });
                swap.Parameters.Add(new() { Value = gen });
                await swap.ExecuteNonQueryAsync(ct);
            }

            await tx.CommitAsync(ct);
        }

        progress?.Invoke(version, version);
        await using (var conn = await ds.OpenConnectionAsync(ct))
        {
            foreach (var table in new[] { "projection_rows", "projection_checkpoints" })
            {
                await using var drop = new NpgsqlCommand($"delete from {table} where run_id = $1 and gen <> $2", conn);
                drop.Parameters.Add(new() { Value = runId });
                drop.Parameters.Add(new() { Value = gen });
                await drop.ExecuteNonQueryAsync(ct);
            }
        }

        return new Result(runId, gen, version, resumed);
    }

    /// <summary>
    /// Folds events (from, to] into the view, plus the derived events that answer the last input,
    /// and writes their rows and the checkpoint in one transaction. A checkpoint therefore always
    /// falls before an input: a resumed fold never meets a decision without its input.
    /// </summary>
    private async Task<long> FoldAsync(string runId, int gen, RunProjections view, long from, long to, (NpgsqlConnection Conn, NpgsqlTransaction Tx)? within, CancellationToken ct)
    {
        var last = from;
        await foreach (var e in store.ReadAsync(runId, from + 1, to + 256, ct: ct, withoutExplanations: true))
        {
            if (e.Seq > to && e.Event is Audit.Domain.Events.InputEvent)
            {
                break;
            }

            view.Apply(e.Recorded);
            last = e.Seq;
        }

        to = last;

        if (within is { } w)
        {
            await Write(w.Conn, w.Tx);
        }
        else
        {
            await using var conn = await store.DataSource.OpenConnectionAsync(ct);
            await using var tx = await conn.BeginTransactionAsync(ct);
            await Write(conn, tx);
            await tx.CommitAsync(ct);
        }

        view.Log.Clear();
        return to;

        async Task Write(NpgsqlConnection conn, NpgsqlTransaction tx)
        {
            await ProjectionStore.WriteAsync(conn, tx, runId, gen, view.Log, ct);
            await ProjectionStore.CheckpointAsync(conn, tx, runId, gen, to, view.Names(), ct);
        }
    }
}
