using Audit.Domain.Events;
using Audit.Domain.Intervals;

namespace Audit.Domain.Model;

/// <summary>
/// Where a new VMA takes effect among VMAs recorded before it. Over an older VMA that is larger (a
/// reservation it is placed into with MAP_FIXED) the new one wins; an older VMA that is no larger
/// keeps its range, since a trace that records two live VMAs over one range means the more specific
/// one. Importers emit VmaUnmapped before a MAP_FIXED mapping that replaces smaller ones.
/// </summary>
public static class VmaPlacement
{
    /// <param name="mappedSize">The size of the mmap an existing VMA came from.</param>
    public static List<(ulong Start, ulong End)> Pieces<T>(IntervalMap<T> vmas, Func<T, ulong> mappedSize, VmaMapped v)
    {
        var start = v.Range.Start.Value;
        var end = v.Range.End.Value;
        var pieces = new List<(ulong, ulong)>();
        var cursor = start;
        foreach (var old in vmas.Overlapping(start, end))
        {
            if (mappedSize(old.Value) > v.Range.Size)
            {
                continue;
            }

            var os = Math.Max(old.Start, start);
            if (os > cursor)
            {
                pieces.Add((cursor, os));
            }

            cursor = Math.Max(cursor, Math.Min(old.End, end));
        }

        if (cursor < end)
        {
            pieces.Add((cursor, end));
        }

        return pieces;
    }
}
