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
public sealed class RunWriter(EventStore store, int checkpointEvery = 10_000)
{
    // The folded state of each run at its version and policy, kept between appends by the contract of
    // RunCache: an append that did not store its inputs leaves its (mutated) state out, and the next
    // one starts again from the run's saved checkpoint, or folds the run.
    private readonly RunCache<(long Version, string Policy, RunState State, long Saved)> _states = new();
    private readonly EngineCheckpoints _checkpoints = new(store.DataSource, TimeProvider.System);

    /// <param name="InferredHost">the host inferred from the trace, when the append recorded it.</param>
    public sealed record Outcome(AppendResult? Result, string? Error, string? Policy, HostDescribed? InferredHost = null);

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
            var summary = await store.GetRunAsync(run, ct);
            var inferred = inferredHost is not null && policyId is null && summary?.Policy is null && !given.Any(i => i.Event is HostDescribed) ? inferredHost : null;
            IReadOnlyList<TraceEvent> inputs = inferred is null ? given : [new TraceEvent(0, given.FirstOrDefault(g => g.TsNs is not null)?.TsNs, inferred, []), .. given];
            var version = summary?.EventCount ?? 0;
            var folded = await FoldAsync(run, version, policyId ?? summary?.Policy, inputs, ct);
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
            if (result.Status == AppendStatus.Appended)
            {
                saved = await SaveCheckpointAsync(run, result.Version, state, saved, ct);
                _states.Committed(run, (result.Version, policy.Id, state, saved));
            }

            if (result.Status != AppendStatus.Conflict || expectedVersion is not null || attempt >= 5)
            {
                return new Outcome(result, null, policy.Id, inferred);
            }
        }
    }

    private sealed record Folded(RunState? State, long Saved, string? Error);

    /// <summary>
    /// The run's state at <paramref name="version"/>: kept from this process's last append, else its saved
    /// checkpoint with the inputs stored after it folded on, else every stored input folded.
    /// </summary>
    private async Task<Folded> FoldAsync(string run, long version, string? named, IReadOnlyList<TraceEvent> inputs, CancellationToken ct)
    {
        if (_states.TryTake(run, c => c.Version == version && named == c.Policy, out var cached))
        {
            return new Folded(cached.State, cached.Saved, null);
        }

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

    /// <summary>Saves the state when enough was appended since the last save; returns the version saved last.</summary>
    private async Task<long> SaveCheckpointAsync(string run, long version, RunState state, long saved, CancellationToken ct)
    {
        if (version - saved < Math.Max(checkpointEvery, saved / 4))
        {
            return saved;
        }

        try
        {
            await _checkpoints.SaveAsync(run, version, state, ct);
            return version;
        }
        catch (Npgsql.NpgsqlException)
        {
            // The append committed; a checkpoint is only a shortcut, and the next append refolds without it.
            return saved;
        }
    }

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
