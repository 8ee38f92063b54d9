using Audit.Domain.Model;
using Audit.Projections.Serialization;
using Npgsql;

namespace Audit.Projections.Storage;

/// <summary>
/// The engine's folded state of each run at a version (engine_checkpoints, migration 0014): a new process
/// appending to a stored run starts from it and folds only the inputs stored after it.
/// </summary>
public sealed class EngineCheckpoints(NpgsqlDataSource dataSource, TimeProvider clock)
{
    public sealed record Checkpoint(long Version, RunState State);

    /// <summary>The run's saved state under <paramref name="policy"/>; null when none was saved, or it was saved under another policy or format.</summary>
    public async Task<Checkpoint?> LoadAsync(string runId, Policy policy, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "select version, state from engine_checkpoints where run_id = $1 and policy = $2 and format = $3");
        cmd.Parameters.Add(new() { Value = runId });
        cmd.Parameters.Add(new() { Value = policy.Id });
        cmd.Parameters.Add(new() { Value = (short)EngineStateCodec.Format });
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct))
        {
            return null;
        }

        var version = r.GetInt64(0);
        var state = EngineStateCodec.Decode(r.GetFieldValue<byte[]>(1), policy);
        return state is null ? null : new Checkpoint(version, state);
    }

    /// <summary>The version the run's saved state folds through (0 when none is saved).</summary>
    public async Task<long> SavedVersionAsync(string runId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("select version from engine_checkpoints where run_id = $1");
        cmd.Parameters.Add(new() { Value = runId });
        return await cmd.ExecuteScalarAsync(ct) is long v ? v : 0;
    }

    /// <summary>
    /// Saves a state folded through <paramref name="version"/>, encoded by <see cref="EngineStateCodec.Encode"/> under
    /// <paramref name="policyId"/>, unless a later one is saved already (a concurrent writer's).
    /// </summary>
    public async Task SaveAsync(string runId, long version, string policyId, byte[] encoded, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("""
            insert into engine_checkpoints (run_id, version, policy, format, state, saved_at)
            values ($1, $2, $3, $4, $5, $6)
            on conflict (run_id) do update
               set version = excluded.version, policy = excluded.policy, format = excluded.format,
                   state = excluded.state, saved_at = excluded.saved_at
             where engine_checkpoints.run_id = $1 and engine_checkpoints.version < excluded.version
            """);
        cmd.Parameters.Add(new() { Value = runId });
        cmd.Parameters.Add(new() { Value = version });
        cmd.Parameters.Add(new() { Value = policyId });
        cmd.Parameters.Add(new() { Value = (short)EngineStateCodec.Format });
        cmd.Parameters.Add(new() { Value = encoded });
        cmd.Parameters.Add(new() { Value = clock.GetUtcNow() });
        await cmd.ExecuteNonQueryAsync(ct);
    }
}
