using System.Runtime.InteropServices;

namespace Audit.Domain.Intervals;

/// <summary>One interval [Start, End) of a map and its value.</summary>
public readonly record struct Interval<T>(ulong Start, ulong End, T Value)
{
    public ulong Size => End - Start;

    public bool Contains(ulong a) => a >= Start && a < End;
}

/// <summary>
/// Non-overlapping half-open intervals over ulong with a value each, sorted by start. Stored as
/// a list of chunks of at most <see cref="ChunkSize"/> intervals, so lookups are O(log n) and an
/// insert moves at most one chunk: a map of a million 4 KiB mappings stays cheap to update.
/// Memory grows with the number of distinct intervals, never with the size they cover.
/// </summary>
public sealed class IntervalMap<T>
{
    private const int ChunkSize = 32;
    private readonly List<List<Interval<T>>> _chunks = [];

    // The first start of each chunk, contiguous, so finding a chunk touches one array, not every chunk probed.
    private readonly List<ulong> _firsts = [];
    private int _count;

    public int Count => _count;

    public IEnumerable<Interval<T>> All()
    {
        foreach (var c in _chunks)
        {
            foreach (var i in c)
            {
                yield return i;
            }
        }
    }

    public IntervalMap<T> Clone()
    {
        var copy = new IntervalMap<T>();
        foreach (var c in _chunks)
        {
            var chunk = NewChunk();
            chunk.AddRange(c);
            copy._chunks.Add(chunk);
        }

        copy._firsts.AddRange(_firsts);
        copy._count = _count;
        return copy;
    }

    public bool TryFind(ulong point, out Interval<T> interval)
    {
        var (c, i) = Floor(point);
        if (c >= 0)
        {
            var x = _chunks[c][i];
            if (x.Contains(point))
            {
                interval = x;
                return true;
            }
        }

        interval = default;
        return false;
    }

    /// <summary>The intervals that overlap [start, end), in order (a snapshot: safe to modify the map while using it).</summary>
    public List<Interval<T>> Overlapping(ulong start, ulong end)
    {
        var result = new List<Interval<T>>();
        if (end <= start || _count == 0)
        {
            return result;
        }

        var (c, i) = Floor(start);
        if (c < 0)
        {
            (c, i) = (0, 0);
        }

        for (; c < _chunks.Count; c++, i = 0)
        {
            var chunk = _chunks[c];
            for (; i < chunk.Count; i++)
            {
                var x = chunk[i];
                if (x.Start >= end)
                {
                    return result;
                }

                if (x.End > start)
                {
                    result.Add(x);
                }
            }
        }

        return result;
    }

    public bool AnyOverlap(ulong start, ulong end)
    {
        if (end <= start || _count == 0)
        {
            return false;
        }

        var (c, i) = Floor(start);
        if (c >= 0 && _chunks[c][i].End > start)
        {
            return true;
        }

        // The next interval after the floor is the only other candidate.
        (c, i) = Next(c, i);
        return c < _chunks.Count && _chunks[c][i].Start < end;
    }

    /// <summary>Sets [start, end) to value, trimming or splitting whatever was there.</summary>
    public void Set(ulong start, ulong end, T value)
    {
        // The same interval set again (a block remapped, permissions relaxed): replace in place.
        var (c, i) = Floor(start);
        if (c >= 0 && _chunks[c][i].Start == start && _chunks[c][i].End == end)
        {
            _chunks[c][i] = new Interval<T>(start, end, value);
            return;
        }

        // Into a gap (a page faulted in for the first time): the floor found above is where it goes.
        if (end > start && (c < 0 || _chunks[c][i].End <= start) && !StartsBefore(Next(c, i), end))
        {
            InsertAfter(c, i, new Interval<T>(start, end, value));
            return;
        }

        Remove(start, end);
        Insert(new Interval<T>(start, end, value));
    }

    private bool StartsBefore((int Chunk, int Index) at, ulong end) => at.Chunk < _chunks.Count && _chunks[at.Chunk][at.Index].Start < end;

    /// <summary>
    /// Replaces the value of every interval inside [start, end) with <paramref name="update"/> of it, in
    /// place; intervals crossing an edge are split there first. Gaps stay gaps.
    /// </summary>
    public void Update(ulong start, ulong end, Func<T, T> update)
    {
        if (end <= start || !AnyOverlap(start, end))
        {
            return;
        }

        foreach (var edge in new[] { start, end })
        {
            if (TryFind(edge, out var x) && x.Start < edge)
            {
                Delete(x.Start);
                Insert(x with { End = edge });
                Insert(x with { Start = edge });
            }
        }

        var (c, i) = Floor(start);
        if (c < 0 || _chunks[c][i].End <= start)
        {
            (c, i) = Next(c, i);
        }

        for (; c < _chunks.Count; c++, i = 0)
        {
            var chunk = _chunks[c];
            for (; i < chunk.Count; i++)
            {
                var x = chunk[i];
                if (x.Start >= end)
                {
                    return;
                }

                chunk[i] = x with { Value = update(x.Value) };
            }
        }
    }

    /// <summary>Clears [start, end): intervals partly inside are trimmed, one spanning it is split in two.</summary>
    public void Remove(ulong start, ulong end)
    {
        if (end <= start)
        {
            return;
        }

        // One overlapping interval at a time, the last first: the interval starting last below end, while it reaches
        // past start. Its parts outside [start, end) go back, and none of them is found again, so the loop needs no
        // snapshot of the overlapping intervals (a list per call was an eighth of what the engine allocated per fault).
        while (true)
        {
            var (c, i) = Floor(end - 1);
            if (c < 0 || _chunks[c][i].End <= start)
            {
                return;
            }

            var x = _chunks[c][i];
            Delete(x.Start);
            if (x.Start < start)
            {
                Insert(x with { End = start });
            }

            if (x.End > end)
            {
                Insert(x with { Start = end });
            }
        }
    }

    private void Insert(Interval<T> x)
    {
        var (c, i) = Floor(x.Start);
        InsertAfter(c, i, x);
    }

    /// <summary>Inserts x after position (c, i), the floor of its start ((-1, -1): before everything).</summary>
    private void InsertAfter(int c, int i, Interval<T> x)
    {
        if (_chunks.Count == 0)
        {
            _chunks.Add(NewChunk());
            _chunks[0].Add(x);
            _firsts.Add(x.Start);
            _count = 1;
            return;
        }

        if (c < 0)
        {
            (c, i) = (0, -1);
        }

        var chunk = _chunks[c];
        chunk.Insert(i + 1, x);
        _firsts[c] = chunk[0].Start;
        _count++;
        if (chunk.Count > ChunkSize * 2)
        {
            var tail = NewChunk();
            tail.AddRange(CollectionsMarshal.AsSpan(chunk)[ChunkSize..]);
            chunk.RemoveRange(ChunkSize, chunk.Count - ChunkSize);
            _chunks.Insert(c + 1, tail);
            _firsts.Insert(c + 1, tail[0].Start);
        }
    }

    // A chunk is made with room for the most it holds before it splits, so it never grows its array:
    // growing 33 -> 66 entries was a tenth of what the engine allocated per fault.
    private static List<Interval<T>> NewChunk() => new(ChunkSize * 2 + 1);

    private void Delete(ulong start)
    {
        var (c, i) = Floor(start);
        var chunk = _chunks[c];
        chunk.RemoveAt(i);
        _count--;
        if (chunk.Count == 0)
        {
            _chunks.RemoveAt(c);
            _firsts.RemoveAt(c);
        }
        else
        {
            _firsts[c] = chunk[0].Start;
        }
    }

    /// <summary>The position of the last interval whose start is at or below key; (-1, -1) when none.</summary>
    private (int Chunk, int Index) Floor(ulong key)
    {
        // Spans over the lists' arrays: every fault probes here several times, and the List indexer's
        // checks cost as much as the search.
        var firsts = CollectionsMarshal.AsSpan(_firsts);
        int lo = 0, hi = firsts.Length - 1, c = -1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (firsts[mid] <= key)
            {
                c = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        if (c < 0)
        {
            return (-1, -1);
        }

        var chunk = CollectionsMarshal.AsSpan(_chunks[c]);
        lo = 0;
        hi = chunk.Length - 1;
        var idx = 0;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (chunk[mid].Start <= key)
            {
                idx = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return (c, idx);
    }

    private (int Chunk, int Index) Next(int c, int i)
    {
        if (c < 0)
        {
            return (0, 0);
        }

        return i + 1 < _chunks[c].Count ? (c, i + 1) : (c + 1, 0);
    }
}
