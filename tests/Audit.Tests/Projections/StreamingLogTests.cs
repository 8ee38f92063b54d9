using Audit.Projections.Temporal;

namespace Audit.Tests.Projections;

/// <summary>A rebuild's streaming log writes exactly the rows the tracking log (inline, one batch) writes, without a database.</summary>
public sealed class StreamingLogTests
{
    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    public void A_streaming_fold_writes_the_rows_of_a_tracking_fold(int seed)
    {
        var tracking = new RunProjections();
        var streaming = new RunProjections(streaming: true);
        var written = new List<TemporalRow>();
        foreach (var r in RandomRun.Decided(seed, 400))
        {
            tracking.Apply(r);
            streaming.Apply(r);

            // As a rebuild does between chunks (it cuts before an input, this anywhere).
            if (r.Seq % 7 == 0)
            {
                written.AddRange(streaming.Log.TakeClosed());
            }
        }

        written.AddRange(streaming.Log.TakeClosed());
        Assert.Empty(tracking.Log.Closed); // one batch from the start: every close is of a row it opened
        Assert.Equal(streaming.OpenCount, streaming.Current().Count());
        written.AddRange(streaming.Current());

        static List<TemporalRow> Sorted(IEnumerable<TemporalRow> rows) =>
            [.. rows.OrderBy(r => r.Projection, StringComparer.Ordinal).ThenBy(r => r.Lo).ThenBy(r => r.FromSeq)];

        var expected = Sorted(tracking.Log.Rows);
        Assert.True(expected.Count(r => r.ToSeq is not null) > 50, $"only {expected.Count(r => r.ToSeq is not null)} closed rows");
        Assert.Equal(expected, Sorted(written));
    }
}
