using Audit.Api.Features.Shared;
using Audit.Domain.Events;
using Audit.Projections.Integrity;
using Audit.Projections.Storage;
using Audit.Projections.Temporal;
using MediatR;

namespace Audit.Api.Features.DbCheck;

/// <summary>Check one run (or every run): the store's promises, and the projections against the events.</summary>
/// <param name="Samples">decisions per run at which the projections are compared with a fold of the events.</param>
public sealed record CheckDatabase(string? Run, int Samples = 20) : IRequest<QueryResult<CheckView>>;

/// <summary>The body of `db check --json`: what was checked and every problem found (none: healthy).</summary>
public sealed record CheckView(int Runs, long Events, int ProjectionSamples, IReadOnlyList<Problem> Problems);

public sealed class CheckDatabaseHandler(EventStore store, TemporalQueries queries) : IRequestHandler<CheckDatabase, QueryResult<CheckView>>
{
    /// <summary>Above this many rows a sample compares the rows around one mapping, not the whole state.</summary>
    private const int WholeStateRows = 5_000;

    public async Task<QueryResult<CheckView>> Handle(CheckDatabase request, CancellationToken cancellationToken)
    {
        var integrity = new StoreIntegrity(store.DataSource);
        var runs = request.Run is { } one ? [one] : await integrity.RunIdsAsync(cancellationToken);
        if (request.Run is not null && await store.GetRunAsync(request.Run, cancellationToken) is null)
        {
            return QueryResult<CheckView>.NotFound($"no run '{request.Run}' (see `audit runs`)");
        }

        var problems = new List<Problem>();
        long events = 0;
        var samples = 0;
        foreach (var run in runs)
        {
            problems.AddRange(await integrity.CheckAsync(run, cancellationToken));
            var (n, s) = await CompareProjectionsAsync(run, request.Samples, problems, cancellationToken);
            events += n;
            samples += s;
        }

        return QueryResult<CheckView>.Ok(new CheckView(runs.Count, events, samples, problems));
    }

    /// <summary>
    /// Folds the run's events in memory (the code a rebuild uses) and, after a sample of its decisions
    /// spread over the run, compares the rows that hold with the stored projections. Returns the
    /// events read and the samples compared.
    /// </summary>
    private async Task<(long Events, int Samples)> CompareProjectionsAsync(string run, int wanted, List<Problem> problems, CancellationToken ct)
    {
        var summary = await store.GetRunAsync(run, ct);
        var decisions = summary is null ? 0 : summary.EventCount - summary.InputCount;
        var every = Math.Max(1, decisions / Math.Max(1, wanted));
        var fold = new RunProjections(streaming: true);
        long read = 0, seen = 0;
        var compared = 0;

        // One disagreement is enough to ask for a rebuild; the rest of the run is still read, so the summary counts every event.
        var disagreed = false;
        var rng = new Random(run.GetHashCode(StringComparison.Ordinal));
        await foreach (var e in store.ReadAsync(run, ct: ct, withoutExplanations: true))
        {
            read++;
            fold.Apply(e.Recorded);
            fold.Log.Clear();
            if (disagreed || e.Event is InputEvent || seen++ % every != 0 || compared >= wanted)
            {
                continue;
            }

            compared++;
            if (await DisagreementAsync(run, e, fold, rng, ct) is { } detail)
            {
                problems.Add(new Problem(run, "projection", detail));
                disagreed = true;
            }
        }

        return (read, compared);
    }

    private async Task<string?> DisagreementAsync(string run, StoredEvent at, RunProjections fold, Random rng, CancellationToken ct)
    {
        // The coarse cells (ADR 0015) are not among the rows a point query gives; they are compared by Stage2CellsTests.
        var current = fold.Current().Where(r => !Stage2Cells.IsCells(r.Projection)).ToList();
        IEnumerable<TemporalRow> expected = current;
        IReadOnlyList<TemporalRow> actual;
        var stage2 = current.Where(r => r.Projection == RunProjections.Stage2Name).ToList();
        if (current.Count > WholeStateRows && stage2.Count > 0)
        {
            var pick = stage2[rng.Next(stage2.Count)];
            var (lo, hi) = ((ulong)pick.Lo, (ulong)pick.Hi);
            expected = current.Where(r => !ByAddress(r.Projection) || ((ulong)r.Lo < hi && (ulong)r.Hi > lo));
            actual = await queries.RowsAtAsync(run, at.Seq, lo, hi, ct);
        }
        else
        {
            actual = await queries.RowsAtAsync(run, at.Seq, ct: ct);
        }

        var want = Keys(expected);
        var got = Keys(actual);
        if (want.SetEquals(got))
        {
            return null;
        }

        var missing = want.Except(got).ToList();
        var extra = got.Except(want).ToList();
        var example = missing.Concat(extra).First();
        return $"after seq {at.Seq} ({at.Type}): {missing.Count} rows the events give are not in the projections and {extra.Count} rows there the events do not give, "
            + $"e.g. {example.Projection} [0x{example.Lo:x}, 0x{example.Hi:x}); `audit rebuild {run}` rebuilds them from the events";
    }

    /// <summary>The projections whose rows a gpa range selects (the others come whole, as RowsAtAsync gives them).</summary>
    private static bool ByAddress(string projection) =>
        projection == RunProjections.Stage2Name || projection == RunProjections.AttributesName || projection.StartsWith("memslots/", StringComparison.Ordinal);

    private static HashSet<(string Projection, long Lo, long Hi, string Data)> Keys(IEnumerable<TemporalRow> rows) =>
        rows.Select(r => (r.Projection, r.Lo, r.Hi, Canonical(Whole(r)))).ToHashSet();

    /// <summary>A stage-2 row's data with the fields its row implies put back (ADR 0015), so rows stored whole and rows stored short compare.</summary>
    private static string Whole(TemporalRow r) =>
        r.Projection == RunProjections.Stage2Name ? System.Text.Json.JsonSerializer.Serialize(Stage2Text.Read(r.Data, r.FromSeq), RunProjections.Json) : r.Data;

    /// <summary>The data, not its text: key order and spacing are the serializer's.</summary>
    private static string Canonical(string json)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(json)!.AsObject();
        return string.Join(",", node.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value?.ToJsonString()}"));
    }
}
