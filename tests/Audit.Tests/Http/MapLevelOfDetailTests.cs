using System.Net;
using System.Text.Json;
using Audit.Api.Features.Bench;
using Audit.Api.Features.Ingest;
using Audit.Api.Http;
using Audit.Projections.Serialization;
using Audit.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace Audit.Tests.Http;

/// <summary>GET /runs/{run}/map?windows=: the map at the screen's level of detail, against the exact map of the same point.</summary>
public sealed class MapLevelOfDetailTests(SchemaFixture schema) : DatabaseTest(schema)
{
    // One schema serves the class: each test maps a run of its own.
    private readonly string Run = "lod-" + Guid.NewGuid().ToString("N")[..8];

    /// <summary>A decoded span of the map: [Lo, Hi), its kind as "type ipat perms granule policy", how many blocks.</summary>
    private sealed record Span(ulong Lo, ulong Hi, string Kind, int Count);

    private async Task<(WebApplication App, HttpClient Client)> StartWithSyntheticRun(long inputs)
    {
        var app = HttpApp.Build([], DataSource, options: new HttpOptions(null, 1 << 20), configure: b => b.WebHost.UseTestServer());
        await app.StartAsync();
        var writer = app.Services.GetRequiredService<RunWriter>();
        var events = SyntheticRun.Generate(inputs, 7).Select(e => new TraceEvent(0, e.TsNs, e.Event, [])).ToList();
        var outcome = await writer.AppendAsync(Run, events, null, null, "arm64/6.17", CancellationToken.None);
        Assert.Null(outcome.Error);
        return (app, app.GetTestClient());
    }

    private async Task<JsonElement> Map(HttpClient client, string query)
    {
        var r = await client.GetAsync($"/runs/{Run}/map?{query}");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        return JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement;
    }

    /// <summary>The spans as the page decodes them: each start is the previous end plus its gap.</summary>
    private static List<Span> Spans(JsonElement map)
    {
        var kinds = map.GetProperty("kinds").EnumerateArray()
            .Select(k => $"{k.GetProperty("memType")} {k.GetProperty("ipat")} {k.GetProperty("perms")} {k.GetProperty("granule")} {k.GetProperty("policy")}").ToList();
        var b = map.GetProperty("blocks");
        List<T> Column<T>(string name, Func<JsonElement, T> read) => b.GetProperty(name).EnumerateArray().Select(read).ToList();
        var gaps = Column("gaps", e => e.GetUInt64());
        var lengths = Column("lengths", e => e.GetUInt64());
        var kindOf = Column("kinds", e => e.GetInt32());
        var counts = Column("counts", e => e.GetInt32());
        var spans = new List<Span>();
        ulong end = 0;
        for (var i = 0; i < gaps.Count; i++)
        {
            var lo = end + gaps[i];
            end = lo + lengths[i];
            spans.Add(new Span(lo, end, kinds[kindOf[i]], counts[i]));
        }

        return spans;
    }

    private static List<(ulong Lo, ulong Hi)> Extents(JsonElement map) =>
        map.GetProperty("extents").EnumerateArray().Select(e => (Convert.ToUInt64(e.GetProperty("gpa").GetString(), 16), e.GetProperty("size").GetUInt64())).Select(e => (e.Item1, e.Item1 + e.Item2)).ToList();

    [Fact]
    public async Task With_a_pixel_per_block_the_windowed_map_is_the_exact_map()
    {
        var (app, client) = await StartWithSyntheticRun(6_000);
        await using var _ = app;
        var last = (await Map(client, "")).GetProperty("lastSeq").GetInt64();
        foreach (var at in new[] { last / 3, last })
        {
            var exact = await Map(client, $"at={at}");
            // The BAR at a page a pixel, the 2 MiB hugetlb memslot at half a block a pixel (a pixel of a whole block would be
            // answered from the coarse cells, ADR 0015): no pixel can hold two blocks, and a block's two pixels draw as one span.
            var windows = Extents(exact).Where(e => e.Lo is 0x10000000 or 0x800000000).ToList();
            Assert.Equal(2, windows.Count);
            var lod = await Map(client, $"at={at}&windows=" + string.Join(',', windows.Select(w => $"0x{w.Lo:x}-0x{w.Hi:x}:{(w.Hi - w.Lo) / (w.Lo == 0x10000000 ? 4096UL : 0x100000UL)}")));

            Assert.True(lod.GetProperty("lod").GetBoolean());
            var expected = Spans(exact).Where(s => windows.Any(w => s.Lo < w.Hi && s.Hi > w.Lo)).ToList();
            Assert.NotEmpty(expected);
            Assert.Equal(expected, Spans(lod));
        }
    }

    [Fact]
    public async Task Zoomed_out_the_map_has_at_most_a_span_a_pixel_and_still_counts_and_covers_every_block()
    {
        var (app, client) = await StartWithSyntheticRun(6_000);
        await using var _ = app;
        // The 64 MiB holding the most blocks, on 40 pixels: finer than the coarse cells (ADR 0015), so the blocks themselves are grouped.
        var exact = await Map(client, "");
        var busiest = Spans(exact).GroupBy(s => s.Lo >> 26).MaxBy(g => g.Sum(s => s.Count))!.Key << 26;
        List<(ulong Lo, ulong Hi)> ram = [(busiest, busiest + (1UL << 26))];
        var blocks = Spans(exact).Where(b => b.Lo >= ram[0].Lo && b.Hi <= ram[0].Hi).ToList();
        const int px = 40;
        var r = await client.GetAsync($"/runs/{Run}/map?windows=" + string.Join(',', ram.Select(e => $"0x{e.Lo:x}-0x{e.Hi:x}:{px}")));
        Assert.Matches("^db;dur=[0-9.]+;desc=\"[0-9]+ rows\", build;dur=[0-9.]+$", r.Headers.GetValues("Server-Timing").Single());
        var lod = Spans(JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement);

        Assert.True(blocks.Sum(b => b.Count) > ram.Count * px, $"the window should hold more blocks ({blocks.Sum(b => b.Count)}) than the map has pixels");
        Assert.InRange(lod.Count, 1, ram.Count * px);
        Assert.Equal(blocks.Sum(b => b.Count), lod.Sum(s => s.Count));
        // Every block start lies in a drawn span, and a drawn span is of a kind the exact map has.
        Assert.All(blocks, b => Assert.Contains(lod, s => s.Lo <= b.Lo && b.Lo < s.Hi));
        Assert.All(lod, s => Assert.Contains(blocks, b => b.Kind == s.Kind));
        // Sorted and disjoint, as the page's binary search needs.
        Assert.All(lod.Zip(lod.Skip(1)), p => Assert.True(p.First.Hi <= p.Second.Lo));
    }

    [Theory]
    [InlineData("0x40000000-0x50000000")]
    [InlineData("0x40000000-0x30000000:100")]
    [InlineData("0x40000000-0x50000000:0")]
    [InlineData("0x40000000-0x50000000:x")]
    [InlineData(",")]
    public async Task A_window_that_is_not_lo_hi_pixels_is_bad_input_with_an_example(string windows)
    {
        var (app, client) = await StartWithSyntheticRun(50);
        await using var _ = app;
        var r = await client.GetAsync($"/runs/{Run}/map?windows={Uri.EscapeDataString(windows)}");
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Contains("example: windows=0x40000000-0x440000000:", JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
    }
}
