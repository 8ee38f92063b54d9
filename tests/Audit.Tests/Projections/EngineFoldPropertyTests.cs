using Audit.Domain;
using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Projections.Temporal;

namespace Audit.Tests.Projections;

/// <summary>
/// The projections only apply what the engine emitted: at every prefix of seeded random runs, the
/// stage-2 rows the projection holds are the entries the engine's own state holds after folding its
/// decisions (same pages, block size, memory type, IPAT and permissions). A rule living in the
/// projection would make the two part.
/// </summary>
public sealed class EngineFoldPropertyTests
{
    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    [InlineData(14)]
    [InlineData(15)]
    [InlineData(16)]
    public void At_every_prefix_the_stage2_projection_equals_the_engines_folded_stage2(int seed)
    {
        var inputs = RandomRun.Generate(seed, 400);
        var state = Engine.Start(Policies.DefaultFor((HostDescribed)inputs[0]));
        var projections = new RunProjections();
        long seq = 0;
        foreach (var e in inputs)
        {
            seq++;
            var derived = Engine.Step(state, seq, e);
            projections.Apply(new Recorded(seq, null, e));
            foreach (var d in derived)
            {
                seq++;
                projections.Apply(new Recorded(seq, null, d));
            }

            Assert.Equal(Pages(Folded(state)), Pages(Projected(projections)));
        }
    }

    private static IEnumerable<(ulong Lo, ulong Hi, string Shape)> Folded(RunState s) =>
        s.Stage2.All().Select(i => (i.Start, i.End, $"{i.Value.Granule} {i.Value.MemType} {i.Value.Ipat} {Fmt.Perms(i.Value.Perms)}"));

    private static IEnumerable<(ulong Lo, ulong Hi, string Shape)> Projected(RunProjections p) =>
        p.Stage2.Rows.All().Where(r => r.Value.Data.IsMapped)
            .Select(r => (r.Start, r.End, $"{r.Value.Data.Granule} {r.Value.Data.MemType} {r.Value.Data.Ipat} {Fmt.Perms(r.Value.Data.Perms!.Value)}"));

    /// <summary>Adjacent intervals of one shape merged, so both sides compare as maximal runs.</summary>
    private static List<(ulong Lo, ulong Hi, string Shape)> Pages(IEnumerable<(ulong Lo, ulong Hi, string Shape)> rows)
    {
        var merged = new List<(ulong Lo, ulong Hi, string Shape)>();
        foreach (var r in rows.OrderBy(r => r.Lo))
        {
            if (merged.Count > 0 && merged[^1].Hi == r.Lo && merged[^1].Shape == r.Shape)
            {
                merged[^1] = (merged[^1].Lo, r.Hi, r.Shape);
            }
            else
            {
                merged.Add(r);
            }
        }

        return merged;
    }
}
