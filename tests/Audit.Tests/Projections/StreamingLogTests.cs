using Audit.Domain;
using Audit.Domain.Events;
using Audit.Domain.Model;
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
        var inputs = RandomRun.Generate(seed, 400);
        var state = Engine.Start(Policies.DefaultFor((HostDescribed)inputs[0]));
        var tracking = new RunProjections();
        var streaming = new RunProjections(streaming: true);
        var written = new List<TemporalRow>();
        long seq = 0;
        foreach (var input in inputs)
        {
            var events = new List<RunEvent> { input };
            events.AddRange(Engine.Step(state, seq + 1, input));
            foreach (var e in events)
            {
                seq++;
                var r = new Recorded(seq, 10 * seq, e);
                tracking.Apply(r);
                streaming.Apply(r);
            }

            // As a rebuild does between chunks.
            if (seq % 7 == 0)
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
