using Audit.Projections.Storage;

namespace Audit.Tests.Storage;

/// <summary>The contract of the per-process caches: only committed work is kept, and nothing is used unchecked.</summary>
public sealed class RunCacheTests
{
    [Fact]
    public void An_entry_staged_by_an_append_is_kept_only_when_the_append_committed()
    {
        var cache = new RunCache<int>();
        cache.Stage("a", 7);
        cache.Complete("a", committed: false);
        Assert.False(cache.TryTake("a", _ => true, out _));

        cache.Stage("a", 8);
        cache.Complete("a", committed: true);
        Assert.True(cache.TryTake("a", _ => true, out var kept));
        Assert.Equal(8, kept);
    }

    [Fact]
    public void An_entry_is_taken_once_and_a_stale_one_is_dropped()
    {
        var cache = new RunCache<int>();
        cache.Stage("a", 1);
        cache.Complete("a", committed: true);

        // Another process appended since: the fingerprint no longer matches, the entry is gone.
        Assert.False(cache.TryTake("a", v => v == 2, out _));
        Assert.False(cache.TryTake("a", _ => true, out _));

        cache.Stage("a", 3);
        cache.Complete("a", committed: true);
        Assert.True(cache.TryTake("a", v => v == 3, out _));
        Assert.False(cache.TryTake("a", _ => true, out _));
    }

    [Fact]
    public void Runs_do_not_share_entries()
    {
        var cache = new RunCache<string>();
        cache.Stage("a", "of a");
        cache.Stage("b", "of b");
        cache.Complete("b", committed: true);
        cache.Complete("a", committed: false);
        Assert.False(cache.TryTake("a", _ => true, out _));
        Assert.True(cache.TryTake("b", _ => true, out var b));
        Assert.Equal("of b", b);
    }

    [Fact]
    public void An_entry_kept_as_committed_is_there_for_the_next_append_of_its_run()
    {
        var cache = new RunCache<long>();
        cache.Committed("a", 42);
        Assert.False(cache.TryTake("b", _ => true, out _));
        Assert.True(cache.TryTake("a", v => v == 42, out var v));
        Assert.Equal(42, v);
    }
}
