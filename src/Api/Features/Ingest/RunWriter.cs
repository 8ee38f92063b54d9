using Audit.Domain;
using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Projections.Serialization;
using Audit.Projections.Storage;

namespace Audit.Api.Features.Ingest;

/// <summary>
/// Appends input events to a run with the model's decisions: folds the run's stored inputs into
/// state, decides each new input, and appends every input followed by its derived events in one
/// transaction, at the version it read (a concurrent writer makes it read and decide again).
/// </summary>
/// <param name="checkpointEvery">the fewest events appended since the run's saved engine state before it is saved again (a quarter of the run when that is more, so saving stays linear in the run's size).</param>
public sealed class RunWriter(EventStore store, int checkpointEvery = 10_000) : IAsyncDisposable, IDisposable
{
    // The folded state of each run at its version and policy, kept between appends by the contract of
    // RunCache, taken in one place (TakeKept): its fingerprint is the version the append expects, which the
    // store checks under the run's lock. An append that did not store its inputs leaves its (mutated) state
    // out, and the next one starts again from the run's saved checkpoint, or folds the run.
    private readonly RunCache<(long Version, string Policy, RunState State, long Saved)> _states = new();
    private readonly EngineCheckpoints _checkpoints = new(store.DataSource, TimeProvider.System);

    // The engine states still being written, a chain per run. An append encodes its run's state and goes on:
    // the write of a few hundred kB took a median of 41 ms inside the append of 8 writers, and 49 of the 55
    // appends that saved took 50 ms or more (docs/benchmarks.md, notes on the append p99).
    private readonly Dictionary<string, Task> _saving = new(StringComparer.Ordinal);

    /// <param name="InferredHost">the host inferred from the trace, when the append recorded it.</param>
    /// <param name="CheckpointMs">how long this call spent on saving the run's engine state after its append, which is encoding it (0 when it saved none).</param>
    public sealed record Outcome(AppendResult? Result, string? Error, string? Policy, HostDescribed? InferredHost = null, double CheckpointMs = 0);

    /// <param name="inferredHost">what the trace shows of its host: recorded first when the run has no policy yet (none named, none stored) and the inputs describe no host.</param>
    public async Task<Outcome> AppendAsync(
        string run,
        IReadOnlyList<TraceEvent> given,
        string? batchKey,
        long? expectedVersion,
        string? policyId,
        CancellationToken ct,
        HostDescribed? inferredHost = null)
    {
        for (var attempt = 0; ; attempt++)
        {
            // This process's own last append of the run, taken on trust only for the version it expects: the
            // store checks that version under the run's lock, and a conflict reads the run on the next attempt.
            var (version, inputs, inferred, folded) = attempt == 0 && TakeKept(run, expectedVersion, policyId) is { } kept
                ? (kept.Version, given, null, new Folded(kept.State, kept.Saved, null))
                : await ReadAndFoldAsync(run, given, policyId, inferredHost, ct);
            if (folded.Error is not null)
            {
                return new Outcome(null, folded.Error, null);
            }

            var (state, policy, saved) = (folded.State!, folded.State!.Policy, folded.Saved);
            var events = new List<NewEvent>(inputs.Count * 2);
            var next = version + 1;
            foreach (var input in inputs)
            {
                var seq = next++;
                events.Add(new NewEvent(input.Event, input.TsNs, input.Extras));
                foreach (var d in Engine.Step(state, seq, input.Event))
                {
                    events.Add(new NewEvent(d, input.TsNs));
                    next++;
                }
            }

            var result = await store.AppendAsync(run, events, expectedVersion ?? version, batchKey, new RunInfo(HostText(state, inputs), policy.Id), ct);
            var checkpointMs = 0.0;
            if (result.Status == AppendStatus.Appended)
            {
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                var before = saved;
                saved = SaveCheckpoint(run, result.Version, state, saved);
                checkpointMs = saved != before ? System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds : 0;
                _states.Committed(run, (result.Version, policy.Id, state, saved));
            }

            if (result.Status != AppendStatus.Conflict || expectedVersion is not null || attempt >= 5)
            {
                return new Outcome(result, null, policy.Id, inferred, checkpointMs);
            }
        }
    }

    private sealed record Folded(RunState? State, long Saved, string? Error);

    /// <summary>The state this process's last committed append of the run left, when it is at the version the caller expects and under the policy it names.</summary>
    private (long Version, RunState State, long Saved)? TakeKept(string run, long? expectedVersion, string? policyId) =>
        _states.TryTake(run, c => (expectedVersion is null || c.Version == expectedVersion) && (policyId is null || policyId == c.Policy), out var kept)
            ? (kept.Version, kept.State, kept.Saved)
            : null;

    /// <summary>Reads the run's version and policy, then folds its state there (the inputs get the inferred host first when the run has no policy yet).</summary>
    private async Task<(long Version, IReadOnlyList<TraceEvent> Inputs, HostDescribed? Inferred, Folded Folded)> ReadAndFoldAsync(
        string run, IReadOnlyList<TraceEvent> given, string? policyId, HostDescribed? inferredHost, CancellationToken ct)
    {
        var summary = await store.GetRunAsync(run, ct);
        var inferred = inferredHost is not null && policyId is null && summary?.Policy is null && !given.Any(i => i.Event is HostDescribed) ? inferredHost : null;
        IReadOnlyList<TraceEvent> inputs = inferred is null ? given : [new TraceEvent(0, given.FirstOrDefault(g => g.TsNs is not null)?.TsNs, inferred, []), .. given];
        var version = summary?.EventCount ?? 0;
        return (version, inputs, inferred, await FoldAsync(run, version, policyId ?? summary?.Policy, inputs, ct));
    }

    /// <summary>
    /// The run's state at <paramref name="version"/> when this process kept none (<see cref="TakeKept"/>): its saved
    /// checkpoint with the inputs stored after it folded on, else every stored input folded.
    /// </summary>
    private async Task<Folded> FoldAsync(string run, long version, string? named, IReadOnlyList<TraceEvent> inputs, CancellationToken ct)
    {
        if (version > 0 && named is not null && Policies.TryParse(named, out var known, out _)
            && await _checkpoints.LoadAsync(run, known!, ct) is { } checkpoint && checkpoint.Version <= version)
        {
            await FoldStoredAsync(run, checkpoint.Version + 1, checkpoint.State, ct);
            return new Folded(checkpoint.State, checkpoint.Version, null);
        }

        // A run with no events yet (a new run's first append) has nothing stored to fold.
        var stored = new List<(long Seq, InputEvent Event)>();
        if (version > 0)
        {
            await foreach (var e in store.ReadAsync(run, ct: ct, withoutExplanations: true))
            {
                if (e.Event is InputEvent i)
                {
                    stored.Add((e.Seq, i));
                }
            }
        }

        var policy = ChoosePolicy(named, stored.Select(x => x.Event).Concat(inputs.Select(x => x.Event)), out var error);
        if (policy is null)
        {
            return new Folded(null, 0, error);
        }

        var state = Engine.Start(policy);
        foreach (var (seq, e) in stored)
        {
            Engine.Step(state, seq, e);
        }

        return new Folded(state, 0, null);
    }

    private async Task FoldStoredAsync(string run, long fromSeq, RunState state, CancellationToken ct)
    {
        await foreach (var e in store.ReadAsync(run, fromSeq, ct: ct, withoutExplanations: true))
        {
            if (e.Event is InputEvent i)
            {
                Engine.Step(state, e.Seq, i);
            }
        }
    }

    /// <summary>
    /// Saves the state when enough was appended since the last save, and returns the version saved last. The
    /// state is encoded now (the run's next append changes it, never these bytes) and written in the background,
    /// after the run's earlier saves; <see cref="DrainAsync"/> waits for the writes.
    /// </summary>
    private long SaveCheckpoint(string run, long version, RunState state, long saved)
    {
        if (version - saved < Math.Max(checkpointEvery, saved / 4))
        {
            return saved;
        }

        var encoded = EngineStateCodec.Encode(state);
        lock (_saving)
        {
            _saving[run] = WriteCheckpointAsync(_saving.GetValueOrDefault(run) ?? Task.CompletedTask, run, version, state.Policy.Id, encoded);
        }

        return version;
    }

    private async Task WriteCheckpointAsync(Task earlier, string run, long version, string policy, byte[] encoded)
    {
        // Back to the caller at once: the write runs on the thread pool, not under the lock nor in the append.
        await Task.Yield();
        await earlier;
        try
        {
            await _checkpoints.SaveAsync(run, version, policy, encoded, CancellationToken.None);
        }
        catch (Exception)
        {
            // Whatever the write met (the database gone, the data source disposed), the append committed: a
            // checkpoint is only a shortcut, and the next process folds on from an older one or from the start.
            // Nothing waits for this write but DrainAsync, which must not fail a command that succeeded.
        }
    }

    /// <summary>Waits until every engine state this writer began to save is written (or failed to be).</summary>
    public async Task DrainAsync()
    {
        Task[] pending;
        lock (_saving)
        {
            pending = [.. _saving.Values];
            foreach (var done in _saving.Where(s => s.Value.IsCompleted).Select(s => s.Key).ToList())
            {
                _saving.Remove(done);
            }
        }

        await Task.WhenAll(pending);
    }

    /// <summary>A process that ends (the CLI's commands, the HTTP host) writes the states it began to save first.</summary>
    public async ValueTask DisposeAsync() => await DrainAsync();

    /// <summary>A container disposed without await still gets the writes (each ends or fails on its own).</summary>
    public void Dispose() => DrainAsync().GetAwaiter().GetResult();

    /// <summary>The named policy, or the one matching the run's HostDescribed.</summary>
    public static Policy? ChoosePolicy(string? policyId, IEnumerable<InputEvent> inputs, out string? error)
    {
        error = null;
        if (policyId is not null)
        {
            if (!Policies.TryParse(policyId, out var p, out var why))
            {
                error = why;
            }

            return p;
        }

        if (inputs.OfType<HostDescribed>().FirstOrDefault() is { } host)
        {
            return Policies.DefaultFor(host);
        }

        error = "the run has no HostDescribed event and nothing in its files shows the host's architecture (no kvm/kvmmmu tracepoints, arch-specific KVM ioctls or uname line), so the model cannot tell the host's arch and kernel: add one, or pass --policy";
        return null;
    }

    private static string? HostText(RunState state, IEnumerable<TraceEvent> inputs) =>
        (state.Host ?? inputs.Select(i => i.Event).OfType<HostDescribed>().FirstOrDefault()) is { } h
            ? $"{(h.Arch == Arch.Arm64 ? "arm64" : "x86_64")} {h.Kernel}{(h.Vendor is { } v ? " " + v.ToString().ToLowerInvariant() : "")}{(h.Inferred is null ? "" : " (inferred)")}"
            : null;
}
