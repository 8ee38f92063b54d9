using System.Collections.Concurrent;

namespace Audit.Projections.Storage;

/// <summary>
/// The one contract of the per-process caches an append uses (the writer's interned step table, the
/// projections' open-row views, the ingest's folded run state): state that a committed append left, kept so the next append of the
/// same run need not read it back.
/// <list type="number">
/// <item>Keyed by run. An entry holds only what a committed transaction wrote.</item>
/// <item>An append takes the entry out (<see cref="TryTake"/>) under the run's row lock and checks it
/// against the database with a cheap fingerprint read in the same transaction (the step table's last
/// id; the view's generation and seq). Another process may have appended or rebuilt since: a stale
/// entry is dropped and the state read afresh. Nothing is ever trusted without that check.</item>
/// <item>What the append changed is staged (<see cref="Stage"/>) and published only when the
/// transaction committed (<see cref="Complete"/>); a rollback or an exception drops it, so the next
/// append reads the committed state.</item>
/// </list>
/// Readers' caches (the reader step tables of <see cref="EventStore"/>) only grow with rows that were
/// committed and never change (a step id names one step for ever); a payload naming an id they lack
/// reloads them. The leaves a ProjectionStore knows attached are facts that stay true for their (run,
/// generation): a rebuild that drops a leaf has made another generation active first, and generation
/// numbers are not reused. Nothing is evicted: a process holds the runs it wrote or read.
/// </summary>
public sealed class RunCache<T>
    where T : notnull
{
    private readonly ConcurrentDictionary<string, T> _committed = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, T> _staged = new(StringComparer.Ordinal);

    /// <summary>Takes the run's entry out when <paramref name="current"/> says it matches the database; a stale one is dropped.</summary>
    public bool TryTake(string runId, Func<T, bool> current, out T value)
    {
        if (_committed.TryRemove(runId, out var cached) && current(cached))
        {
            value = cached;
            return true;
        }

        value = default!;
        return false;
    }

    /// <summary>What the append in flight leaves for the run, published by <see cref="Complete"/> if it commits.</summary>
    public void Stage(string runId, T value) => _staged[runId] = value;

    /// <summary>Keeps what an append left when its caller learns it committed only from the append's result (the ingest's folded state).</summary>
    public void Committed(string runId, T value) => _committed[runId] = value;

    /// <summary>Publishes the staged entry when the append committed, drops it otherwise.</summary>
    public void Complete(string runId, bool committed)
    {
        if (_staged.TryRemove(runId, out var value) && committed)
        {
            _committed[runId] = value;
        }
    }
}
