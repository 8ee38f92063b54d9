using Audit.Domain.Intervals;

namespace Audit.Tests.Domain;

/// <summary>The interval map against the plainest model of it: one value per address of a small space.</summary>
public sealed class IntervalMapTests
{
    private const int Space = 600;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Random_sets_removes_and_updates_leave_the_map_equal_to_a_value_per_address(int seed)
    {
        var rng = new Random(seed);
        var map = new IntervalMap<int>();
        var model = new int?[Space];
        for (var step = 0; step < 6_000; step++)
        {
            var start = (ulong)rng.Next(Space);
            var end = Math.Min(Space, start + (ulong)rng.Next(1, rng.Next(2) == 0 ? 4 : 40));
            var value = rng.Next(3);
            switch (rng.Next(10))
            {
                case < 6:
                    map.Set(start, end, value);
                    Fill(model, start, end, _ => value);
                    break;
                case < 8:
                    map.Remove(start, end);
                    Fill(model, start, end, _ => null);
                    break;
                default:
                    map.Update(start, end, v => v + 10);
                    Fill(model, start, end, v => v + 10);
                    break;
            }

            AssertSame(map, model, step);
        }
    }

    private static void Fill(int?[] model, ulong start, ulong end, Func<int?, int?> value)
    {
        for (var a = start; a < end; a++)
        {
            model[a] = value(model[a]);
        }
    }

    private static void AssertSame(IntervalMap<int> map, int?[] model, int step)
    {
        var flat = new int?[Space];
        ulong last = 0;
        var count = 0;
        foreach (var i in map.All())
        {
            Assert.True(i.Start >= last && i.End > i.Start, $"step {step}: [{i.Start}, {i.End}) overlaps or is out of order");
            for (var a = i.Start; a < i.End; a++)
            {
                flat[a] = i.Value;
            }

            last = i.End;
            count++;
        }

        Assert.Equal(count, map.Count);
        Assert.Equal(model, flat);
        for (var a = 0UL; a < Space; a += 7)
        {
            Assert.Equal(model[a], map.TryFind(a, out var found) ? found.Value : null);
        }
    }
}
