using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Audit.Api.Features.State;
using Audit.Api.Http;
using Audit.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;

namespace Audit.Tests.Http;

/// <summary>What the web UI needs from the host: its static files, the timeline, the event search and the policies.</summary>
public sealed partial class WebUiTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private async Task<(WebApplication App, HttpClient Client)> StartWithGh()
    {
        var app = HttpApp.Build([], DataSource, options: new HttpOptions("t", 1 << 20), configure: b => b.WebHost.UseTestServer());
        await app.StartAsync();
        var client = app.GetTestClient();
        var post = new HttpRequestMessage(HttpMethod.Post, "/runs/gh/events")
        {
            Content = new StringContent(File.ReadAllText(Path.Combine(Paths.Samples, "gh200-gpu-passthrough.ndjson")), Encoding.UTF8, "application/x-ndjson"),
        };
        post.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "t");

        // Every test of the class starts this way over one schema: the key stores the run once, the later posts are duplicates.
        post.Headers.Add("Idempotency-Key", "gh-sample");
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(post)).StatusCode);

        // Every read needs the token too (static files aside).
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "t");
        return (app, client);
    }

    private static async Task<JsonElement> Json(HttpResponseMessage r) => JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement;

    [Fact]
    public async Task The_timeline_counts_every_event_once_and_marks_memslot_changes_and_unmaps_where_they_happen()
    {
        var (app, client) = await StartWithGh();
        await using var _ = app;
        var tl = await Json(await client.GetAsync("/runs/gh/timeline?buckets=100"));
        var slices = tl.GetProperty("slices").EnumerateArray().ToList();
        Assert.Equal(26, tl.GetProperty("lastSeq").GetInt64());
        Assert.Equal(26, slices.Sum(s => s.GetProperty("events").GetInt64()));

        // More buckets than events: one event per slice, so each marker sits on its own seq.
        long[] Seqs(string kind) => slices.Where(s => s.GetProperty(kind).GetInt64() > 0).Select(s => s.GetProperty("fromSeq").GetInt64()).ToArray();
        Assert.Equal([4L, 7, 10, 20], Seqs("memslotChanges"));
        Assert.Equal([26L], Seqs("unmaps"));
        Assert.Empty(Seqs("errors"));
    }

    [Fact]
    public async Task The_map_gives_the_blocks_at_a_point_in_columns_and_the_extents_every_memslot_ever_covered()
    {
        var (app, client) = await StartWithGh();
        await using var _ = app;
        var map = await Json(await client.GetAsync("/runs/gh/map?at=20"));
        Assert.Equal(20, map.GetProperty("at").GetInt64());
        Assert.Equal(26, map.GetProperty("lastSeq").GetInt64());

        // The BAR, RAM and GPU memslots: three extents for the map's segmented axis.
        var extents = map.GetProperty("extents").EnumerateArray().Select(e => e.GetProperty("gpa").GetString()!).ToArray();
        Assert.Equal(["0x10000000", "0x40000000", "0x40000000000"], extents);

        // Decoded as the page does: each start is the previous end plus its gap.
        var blocks = map.GetProperty("blocks");
        var kinds = map.GetProperty("kinds").EnumerateArray().ToList();
        var gaps = blocks.GetProperty("gaps").EnumerateArray().Select(g => g.GetUInt64()).ToList();
        var lengths = blocks.GetProperty("lengths").EnumerateArray().Select(g => g.GetUInt64()).ToList();
        var kindOf = blocks.GetProperty("kinds").EnumerateArray().Select(g => g.GetInt32()).ToList();
        ulong end = 0;
        var decoded = new List<string>();
        for (var i = 0; i < gaps.Count; i++)
        {
            var lo = end + gaps[i];
            end = lo + lengths[i];
            decoded.Add($"0x{lo:x} {kinds[kindOf[i]].GetProperty("memType").GetString()} {lengths[i]}");
        }

        Assert.Equal(["0x10000000 NormalNC 2097152", "0x40000000 Normal 2097152", "0x40000000000 Normal 1073741824"], decoded);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/runs/nope/map")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await client.GetAsync("/runs/gh/map?at=yesterday")).StatusCode);
    }

    [Fact]
    public void Contiguous_blocks_of_one_kind_become_one_span_and_any_other_kind_or_a_hole_starts_a_new_one()
    {
        Stage2Entry Entry(string gpa, string memType) => new(gpa, 0x200000, 0x200000, memType, null, "rw-", "arm64/6.17", 5, 5);
        var (kinds, blocks) = Audit.Api.Features.Map.GetMapHandler.Columns(
        [
            Entry("0x40000000", "Normal"), Entry("0x40200000", "Normal"), Entry("0x40400000", "Device"), Entry("0x40800000", "Device"),
        ]);
        Assert.Equal(2, kinds.Count);
        Assert.Equal([0x40000000UL, 0, 0x200000], blocks.Gaps);
        Assert.Equal([0x400000UL, 0x200000, 0x200000], blocks.Lengths);
        Assert.Equal([2, 1, 1], blocks.Counts);
        Assert.Equal([0, 1, 1], blocks.Kinds);
    }

    [Fact]
    public async Task The_timeline_over_time_puts_each_slice_in_its_share_of_the_runs_time_span()
    {
        var (app, client) = await StartWithGh();
        await using var _ = app;
        var tl = await Json(await client.GetAsync("/runs/gh/timeline?by=time&buckets=14"));
        var slices = tl.GetProperty("slices").EnumerateArray().ToList();
        Assert.Equal(26, slices.Sum(s => s.GetProperty("events").GetInt64()));
        // Slice i holds the events of [first + i * span / n, first + (i + 1) * span / n), span = last - first + 1 ns.
        static long Ns(JsonElement e, string p) => (DateTimeOffset.Parse(e.GetProperty(p).GetString()!, System.Globalization.CultureInfo.InvariantCulture) - DateTimeOffset.UnixEpoch).Ticks * 100;
        var first = Ns(tl, "firstTs");
        var span = (double)(Ns(tl, "lastTs") - first + 1);
        foreach (var s in slices)
        {
            var i = s.GetProperty("index").GetInt32();
            Assert.InRange(Ns(s, "fromTs") - first, i * span / 14, (i + 1) * span / 14);
            Assert.InRange(Ns(s, "toTs") - first, i * span / 14, (i + 1) * span / 14);
        }

        Assert.Equal(0, slices[0].GetProperty("index").GetInt32());
        Assert.Equal(13, slices[^1].GetProperty("index").GetInt32());
        Assert.Equal(26, slices[^1].GetProperty("toSeq").GetInt64());
    }

    [Fact]
    public async Task The_timeline_refuses_unknown_axes_and_bucket_counts_and_unknown_runs()
    {
        var (app, client) = await StartWithGh();
        await using var _ = app;
        Assert.Equal(HttpStatusCode.BadRequest, (await client.GetAsync("/runs/gh/timeline?by=bytes")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await client.GetAsync("/runs/gh/timeline?buckets=0")).StatusCode);
        var missing = await client.GetAsync("/runs/nope/timeline");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Contains("no run 'nope'", (await Json(missing)).GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Find_by_rule_gives_the_decision_that_cites_it_with_its_page()
    {
        var (app, client) = await StartWithGh();
        await using var _ = app;
        const string rule = "arm64.user_mem_abort.force_noncacheable";
        var why = await Json(await client.GetAsync("/runs/gh/why?gpa=0x10000040&at=20"));
        Assert.Contains(why.GetProperty("explanation").EnumerateArray(), s => s.GetProperty("rule").GetString() == rule);
        var mapping = why.GetProperty("mapping");
        var decided = mapping.GetProperty("decidedAt").GetInt64();
        var lo = Convert.ToUInt64(mapping.GetProperty("gpa").GetString(), 16);

        // The first decision that cites it: the why of its page at its seq cites it too.
        var first = await Json(await client.GetAsync($"/runs/gh/find?rule={rule}&after=0"));
        var firstSeq = first.GetProperty("seq").GetInt64();
        Assert.InRange(firstSeq, 1, decided);
        var firstWhy = await Json(await client.GetAsync($"/runs/gh/why?gpa={first.GetProperty("gpa").GetString()}&at={firstSeq}"));
        Assert.Equal(firstSeq, firstWhy.GetProperty("mapping").GetProperty("decidedAt").GetInt64());
        Assert.Contains(firstWhy.GetProperty("explanation").EnumerateArray(), s => s.GetProperty("rule").GetString() == rule);

        // From just before the BAR page's decision: that decision, of a fault inside the BAR block.
        var found = await Json(await client.GetAsync($"/runs/gh/find?rule={rule}&after={decided - 1}"));
        Assert.Equal(decided, found.GetProperty("seq").GetInt64());
        Assert.Equal("fault_resolved", found.GetProperty("type").GetString());
        Assert.InRange(Convert.ToUInt64(found.GetProperty("gpa").GetString(), 16), lo, lo + mapping.GetProperty("size").GetUInt64() - 1);
        Assert.Equal(decided, (await Json(await client.GetAsync($"/runs/gh/find?rule={rule}&after={decided + 1}&direction=back"))).GetProperty("seq").GetInt64());
        var last = (await Json(await client.GetAsync("/runs/gh/timeline"))).GetProperty("lastSeq").GetInt64();
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync($"/runs/gh/find?rule={rule}&after={last}")).StatusCode);
        var unknown = await client.GetAsync("/runs/gh/find?rule=arm64.no_such_rule");
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Contains("not a rule id", (await Json(unknown)).GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Find_gives_the_next_or_previous_event_of_a_type_by_either_name()
    {
        var (app, client) = await StartWithGh();
        await using var _ = app;
        Assert.Equal(7, (await Json(await client.GetAsync("/runs/gh/find?type=MemslotSet&after=4"))).GetProperty("seq").GetInt64());
        Assert.Equal(10, (await Json(await client.GetAsync("/runs/gh/find?type=memslot_set&after=20&direction=back"))).GetProperty("seq").GetInt64());
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/runs/gh/find?type=memslot_set&after=20")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await client.GetAsync("/runs/gh/find?type=drop%20table")).StatusCode);
    }

    [Fact]
    public async Task The_policies_list_names_each_policy_with_its_architecture()
    {
        var (app, client) = await StartWithGh();
        await using var _ = app;
        var list = (await Json(await client.GetAsync("/policies"))).EnumerateArray().ToList();
        Assert.Contains(list, p => p.GetProperty("id").GetString() == "arm64/5.14" && p.GetProperty("arch").GetString() == "arm64");
        Assert.Contains(list, p => p.GetProperty("id").GetString()!.StartsWith("x86-svm/", StringComparison.Ordinal) && p.GetProperty("arch").GetString() == "x86_64");
    }

    [Fact]
    public async Task The_page_and_every_module_it_imports_are_served_offline_with_a_self_only_policy()
    {
        var (app, client) = await StartWithGh();
        await using var _ = app;
        var page = await client.GetAsync("/");
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.Contains("default-src 'self'", page.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);

        // Every file the page names and every module a module imports is served; nothing comes from elsewhere.
        var pending = new Queue<string>(LocalRefs().Matches(await page.Content.ReadAsStringAsync()).Select(m => m.Groups[1].Value));
        var seen = new HashSet<string>();
        while (pending.TryDequeue(out var name))
        {
            if (!seen.Add(name))
            {
                continue;
            }

            var r = await client.GetAsync("/ui/" + name);
            Assert.True(r.StatusCode == HttpStatusCode.OK, $"/ui/{name}: {r.StatusCode}");
            var text = await r.Content.ReadAsStringAsync();
            Assert.DoesNotContain("http://", text, StringComparison.Ordinal);
            Assert.DoesNotContain("https://", text, StringComparison.Ordinal);
            foreach (Match m in Imports().Matches(text))
            {
                pending.Enqueue(m.Groups[1].Value);
            }
        }

        Assert.Contains("map.js", seen);
        Assert.Contains("bench.js", seen);
        Assert.Equal(seen.Order(), WebUi.Names.Where(n => n != "index.html").Order());
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/ui/secrets.txt")).StatusCode);
    }

    [GeneratedRegex("""(?:src|href)="/ui/([a-z]+\.(?:js|css))" """, RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex LocalRefs();

    [GeneratedRegex("""(?:from\s+|import\()'\./([a-z]+\.js)'""")]
    private static partial Regex Imports();
}
