using Audit.Api.Features.Shared;
using Audit.Domain.Addresses;
using Audit.Projections.Serialization;
using Audit.Projections.Storage;
using Audit.Projections.Timeline;
using MediatR;

namespace Audit.Api.Features.Timeline;

/// <summary>A run's events as a density strip over seq or time, with counts of the kinds worth a marker, and where its memslots lie.</summary>
public sealed record GetTimeline(string Run, string? By, int? Buckets) : IRequest<QueryResult<TimelineView>>;

public sealed record TimelineBucket(
    int Index, long FromSeq, long ToSeq, string? FromTs, string? ToTs, long Events,
    long MemslotChanges, long Unmaps, long MemoryFaultExits, long Divergences, long Errors);

/// <summary>A populated guest range: the union of every memslot range the run ever had that touches it.</summary>
public sealed record GpaExtent(string Gpa, ulong Size);

/// <summary>The body of GET /runs/{run}/timeline: what the web UI's scrubber draws and its map's axis.</summary>
public sealed record TimelineView(string Run, string By, int Buckets, long LastSeq, string? FirstTs, string? LastTs, IReadOnlyList<TimelineBucket> Slices, IReadOnlyList<GpaExtent> Extents);

public sealed class GetTimelineHandler(EventStore store, EventDensity density) : IRequestHandler<GetTimeline, QueryResult<TimelineView>>
{
    /// <summary>More slices than a screen has pixels buys nothing.</summary>
    public const int MaxBuckets = 4000;

    public async Task<QueryResult<TimelineView>> Handle(GetTimeline request, CancellationToken cancellationToken)
    {
        var by = request.By ?? "seq";
        if (by is not ("seq" or "time"))
        {
            return QueryResult<TimelineView>.Bad($"by '{by}' is neither seq nor time");
        }

        var buckets = request.Buckets ?? 1000;
        if (buckets is < 1 or > MaxBuckets)
        {
            return QueryResult<TimelineView>.Bad($"buckets {buckets} is outside 1..{MaxBuckets}");
        }

        var run = await store.GetRunAsync(request.Run, cancellationToken);
        if (run is null)
        {
            return QueryResult<TimelineView>.NotFound($"no run '{request.Run}' (see `audit runs`)");
        }

        var slices = await density.BucketsAsync(request.Run, run.EventCount, run.FirstTsNs, run.LastTsNs, buckets, by == "time", cancellationToken);
        var extents = Merge(await density.MemslotExtentsAsync(request.Run, cancellationToken));
        return QueryResult<TimelineView>.Ok(new TimelineView(
            request.Run, by, buckets, run.EventCount, Ts(run.FirstTsNs), Ts(run.LastTsNs), slices.Select(View).ToList(), extents));
    }

    private static TimelineBucket View(DensityBucket b) => new(
        b.Index, b.FromSeq, b.ToSeq, Ts(b.FromTsNs), Ts(b.ToTsNs), b.Events, b.MemslotChanges, b.Unmaps, b.MemoryFaultExits, b.Divergences, b.Errors);

    private static string? Ts(long? ns) => ns is { } v ? Timestamps.Format(v) : null;

    /// <summary>Overlapping or touching memslot ranges as one extent each, in address order.</summary>
    internal static IReadOnlyList<GpaExtent> Merge(IEnumerable<MemslotExtent> ranges)
    {
        var parsed = ranges
            .Select(r => Hex.TryParse(r.Gpa, out var lo) && Hex.TryParse(r.Size, out var size) && size > 0 ? (Lo: lo, Hi: lo + size) : default)
            .Where(r => r.Hi > r.Lo)
            .OrderBy(r => r.Lo);
        var merged = new List<(ulong Lo, ulong Hi)>();
        foreach (var r in parsed)
        {
            if (merged.Count > 0 && r.Lo <= merged[^1].Hi)
            {
                merged[^1] = (merged[^1].Lo, Math.Max(merged[^1].Hi, r.Hi));
            }
            else
            {
                merged.Add(r);
            }
        }

        return merged.Select(m => new GpaExtent(Hex.Format(m.Lo), m.Hi - m.Lo)).ToList();
    }
}
