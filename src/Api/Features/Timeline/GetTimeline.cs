using System.Collections.Concurrent;
using Audit.Api.Features.Shared;
using Audit.Projections.Serialization;
using Audit.Projections.Storage;
using Audit.Projections.Timeline;
using MediatR;

namespace Audit.Api.Features.Timeline;

/// <summary>A run's events as a density strip over seq or time, with counts of the kinds worth a marker.</summary>
public sealed record GetTimeline(string Run, string? By, int? Buckets) : IRequest<QueryResult<TimelineView>>;

public sealed record TimelineBucket(
    int Index, long FromSeq, long ToSeq, string? FromTs, string? ToTs, long Events,
    long MemslotChanges, long Unmaps, long MemoryFaultExits, long Divergences, long Errors);

/// <summary>The body of GET /runs/{run}/timeline: what the web UI's scrubber draws.</summary>
public sealed record TimelineView(string Run, string By, int Buckets, long LastSeq, string? FirstTs, string? LastTs, IReadOnlyList<TimelineBucket> Slices);

/// <summary>
/// Timelines already counted, by run, version and slicing: counting scans every event of the run (about
/// a second for 200,000 events on a loaded 2-core machine; a run of more than a million is sliced by seq
/// from its marker rows instead, EventDensity.ScanLimit), and a run's events never change below its
/// version, so a page reloaded or a second user costs nothing.
/// </summary>
public sealed class TimelineCache
{
    private const int Capacity = 32;
    private readonly ConcurrentDictionary<(string Run, long Version, string By, int Buckets), TimelineView> _views = new();

    public TimelineView? Find((string, long, string, int) key) => _views.GetValueOrDefault(key);

    public void Keep((string, long, string, int) key, TimelineView view)
    {
        if (_views.Count >= Capacity)
        {
            _views.Clear();
        }

        _views[key] = view;
    }
}

public sealed class GetTimelineHandler(EventStore store, EventDensity density, TimelineCache cache) : IRequestHandler<GetTimeline, QueryResult<TimelineView>>
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

        var key = (request.Run, run.EventCount, by, buckets);
        if (cache.Find(key) is { } known)
        {
            return QueryResult<TimelineView>.Ok(known);
        }

        var slices = await density.BucketsAsync(request.Run, run.EventCount, run.FirstTsNs, run.LastTsNs, buckets, by == "time", cancellationToken);
        var view = new TimelineView(request.Run, by, buckets, run.EventCount, Ts(run.FirstTsNs), Ts(run.LastTsNs), slices.Select(View).ToList());
        cache.Keep(key, view);
        return QueryResult<TimelineView>.Ok(view);
    }

    private static TimelineBucket View(DensityBucket b) => new(
        b.Index, b.FromSeq, b.ToSeq, Ts(b.FromTsNs), Ts(b.ToTsNs), b.Events, b.MemslotChanges, b.Unmaps, b.MemoryFaultExits, b.Divergences, b.Errors);

    private static string? Ts(long? ns) => ns is { } v ? Timestamps.Format(v) : null;
}
