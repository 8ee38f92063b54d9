using Audit.Projections.Temporal;

namespace Audit.Tests.Projections;

/// <summary>The pure row bookkeeping, without a database.</summary>
public sealed class TemporalViewTests
{
    private static TemporalView<string> View() => new("p", (s, _) => s);

    [Fact]
    public void Setting_over_part_of_a_row_closes_it_and_reopens_the_remainders()
    {
        var v = View();
        var log = new ChangeLog();
        v.Set(0x0, 0x4000, "a", 1, log);
        log.Clear();

        v.Set(0x1000, 0x2000, "b", 5, log);
        Assert.Equal([("p", 0x0L, 1L, 5L)], log.Closed);
        Assert.Equal(
            [(0x0L, 0x1000L, 5L, "a"), (0x2000L, 0x4000L, 5L, "a"), (0x1000L, 0x2000L, 5L, "b")],
            log.Rows.Select(r => (r.Lo, r.Hi, r.FromSeq, r.Data)).OrderBy(r => r.Data).ThenBy(r => r.Lo));
        Assert.Equal(3, v.Rows.Count);
    }

    [Fact]
    public void A_row_opened_and_closed_in_one_batch_is_written_once_already_closed()
    {
        var v = View();
        var log = new ChangeLog();
        v.Set(0x0, 0x1000, "a", 1, log);
        v.Remove(0x0, 0x1000, 3, log);
        var row = Assert.Single(log.Rows);
        Assert.Equal((1L, (long?)3), (row.FromSeq, row.ToSeq));
        Assert.Empty(log.Closed);

        // Opened and closed at the same seq: it never held, nothing is written.
        log.Clear();
        v.Set(0x0, 0x1000, "a", 4, log);
        v.Set(0x0, 0x1000, "b", 4, log);
        Assert.Equal(["b"], log.Rows.Select(r => r.Data));
    }

    [Fact]
    public void Setting_data_that_already_holds_everywhere_changes_nothing()
    {
        var v = View();
        var log = new ChangeLog();
        v.Set(0x0, 0x4000, "a", 1, log);
        log.Clear();
        v.Set(0x1000, 0x2000, "a", 2, log);
        Assert.Empty(log.Rows);
        Assert.Empty(log.Closed);
    }

    [Fact]
    public void Update_changes_only_the_rows_inside_and_leaves_gaps()
    {
        var v = View();
        var log = new ChangeLog();
        v.Set(0x0, 0x2000, "a", 1, log);
        v.Set(0x3000, 0x4000, "a", 1, log);
        log.Clear();
        v.Update(0x1000, 0x3800, d => d + "!", 7, log);
        Assert.Equal(["a", "a!", "a!", "a"], v.Rows.All().Select(x => x.Value.Data));
        Assert.Equal([0x0UL, 0x1000UL, 0x3000UL, 0x3800UL], v.Rows.All().Select(x => x.Start));
        Assert.False(v.Rows.TryFind(0x2800, out _));
    }
}
