using System.Diagnostics;
using Audit.Domain;
using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Api.Features.Bench;

/// <summary>The engine alone on one thread: decide and fold every input of a synthetic run.</summary>
public static class EngineBench
{
    public sealed record Result(long Events, long Faults, long Derived, double Seconds, double FaultsPerSec, double EventsPerSec, double MinFaultsPerSec, double MaxFaultsPerSec);

    public static Result Run(long events, int seed = 42)
    {
        var inputs = SyntheticRun.Generate(events, seed).Select(x => x.Event).ToArray();
        var faults = inputs.LongCount(e => e is GuestFaulted);

        // One full pass lets tiered compilation reach its optimized code; the second pass is measured.
        var warm = Engine.Start(Policies.Arm64_6_17);
        long wseq = 0;
        foreach (var e in inputs)
        {
            wseq += Engine.Step(warm, ++wseq, e).Count;
        }

        // Three measured passes over a fresh state each; the median is reported, the spread kept.
        var times = new List<double>();
        long derived = 0;
        for (var pass = 0; pass < 3; pass++)
        {
            var state = Engine.Start(Policies.Arm64_6_17);
            long seq = 0;
            derived = 0;
            var sw = Stopwatch.StartNew();
            foreach (var e in inputs)
            {
                var d = Engine.Step(state, ++seq, e);
                seq += d.Count;
                derived += d.Count;
            }

            times.Add(sw.Elapsed.TotalSeconds);
        }

        times.Sort();
        var s = times[1];
        return new Result(inputs.Length, faults, derived, s, faults / s, inputs.Length / s, faults / times[2], faults / times[0]);
    }
}
