using System.Text.Json;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Audit.Tests.Web;

/// <summary>The web UI in headless Chromium against the real host and the demo runs (issue 18).</summary>
public sealed class UiTests(UiServer server) : IClassFixture<UiServer>, IAsyncLifetime
{
    private const string ForceNc = "arm64.user_mem_abort.force_noncacheable";
    private readonly List<string> _errors = [];
    private IPage _page = null!;

    public async Task InitializeAsync()
    {
        if (server.Problem is null)
        {
            _page = await server.PageAsync(_errors);
        }
    }

    public async Task DisposeAsync()
    {
        if (_page is not null)
        {
            await _page.Context.CloseAsync();
        }
    }

    private async Task Open(string query, string? url = null, bool ready = true)
    {
        Skip.If(server.Problem is not null, server.Problem);
        await _page.GotoAsync((url ?? server.BaseUrl) + query);
        if (ready)
        {
            await Expect(_page.Locator("body[data-ready=true]")).ToHaveCountAsync(1);
        }
    }

    private ILocator Map => _page.Locator("#map");

    private ILocator Scrubber => _page.Locator("#scrubber");

    private ILocator Why => _page.Locator("#why");

    private async Task Shot(string name)
    {
        await _page.ScreenshotAsync(new() { Path = Path.Combine(UiServer.Screenshots, name + ".png"), FullPage = true });
        Assert.Empty(_errors);
    }

    [SkippableFact]
    public async Task The_demo_runs_load_into_the_runs_list_and_the_first_one_into_the_map()
    {
        await Open("/");
        var rows = _page.Locator("#runs tbody tr");
        await Expect(rows).ToHaveCountAsync(4);
        Assert.Equal(["gh", UiServer.SecondRun, "pvm", "snp"], await rows.EvaluateAllAsync<string[]>("rs => rs.map(r => r.dataset.run)"));
        await Expect(Scrubber).ToHaveAttributeAsync("data-last", "26");
        await Expect(Map).ToHaveAttributeAsync("data-at", "26");
        // At its end gh holds the GPU's 1G block and two RAM mappings, all Normal: the BAR was unmapped. Zoomed out, RAM and
        // GPU memory are drawn from their cells (ADR 0015), which know the kinds there but not the blocks; the BAR is not.
        await Expect(Map).ToHaveAttributeAsync("data-kinds", "Normal");
        await Expect(Map).ToHaveAttributeAsync("data-blocks", "0");
        await Expect(Map).Not.ToHaveAttributeAsync("data-cells", "0");
        await Shot("runs-and-map");

        await rows.Filter(new() { HasText = "snp" }).ClickAsync();
        await Expect(_page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("run=snp"));
        await Expect(Scrubber).ToHaveAttributeAsync("data-last", new System.Text.RegularExpressions.Regex("^[1-9][0-9]*$"));
        await Shot("snp-run");
    }

    [SkippableFact]
    public async Task The_bar_page_at_seq_20_is_normal_nc_with_the_forced_non_cacheable_rule_in_the_why_panel()
    {
        await Open("/?run=gh&at=20&gpa=0x10000040");
        await Expect(Why).ToHaveAttributeAsync("data-gpa", "0x10000040");
        await Expect(Why).ToHaveAttributeAsync("data-memtype", "NormalNC");
        await Expect(Why.Locator($"li[data-rule='{ForceNc}']")).ToBeVisibleAsync();
        await Expect(Why.Locator(".verdict")).ToContainTextAsync("Normal-NC");
        await Expect(Map).ToHaveAttributeAsync("data-selected-block", "0x10000000 NormalNC 2M rw-");
        await Expect(Scrubber).ToHaveAttributeAsync("data-at", "20");
        await Shot("why-bar-at-20");
    }

    [SkippableFact]
    public async Task Clicking_a_fact_moves_the_scrubber_to_its_seq_the_map_follows_and_back_returns()
    {
        await Open("/?run=gh&at=20&gpa=0x10000040");
        var fact = Why.Locator($"li[data-rule='{ForceNc}'] li[data-fact='vma.memType'] a.seq");
        var seq = await fact.GetAttributeAsync("data-seq");
        Assert.Equal("9", seq);
        await fact.ClickAsync();

        // At seq 9 the BAR's VMA exists but nothing is mapped yet: no stage-2 block at all.
        await Expect(Scrubber).ToHaveAttributeAsync("data-at", seq!);
        await Expect(Map).ToHaveAttributeAsync("data-at", seq!);
        await Expect(Map).ToHaveAttributeAsync("data-blocks", "0");
        await Expect(Map).ToHaveAttributeAsync("data-selected-block", "");
        await Expect(Why).ToHaveAttributeAsync("data-outcome", "never_faulted");
        await Expect(_page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("at=9"));
        await Shot("fact-moved-scrubber-to-9");

        await _page.GoBackAsync();
        await Expect(Scrubber).ToHaveAttributeAsync("data-at", "20");
        await Expect(Map).ToHaveAttributeAsync("data-selected-block", "0x10000000 NormalNC 2M rw-");
        await _page.GoForwardAsync();
        await Expect(Map).ToHaveAttributeAsync("data-at", "9");
    }

    [SkippableFact]
    public async Task At_the_end_of_gh_the_bar_page_is_unmapped()
    {
        await Open("/?run=gh&gpa=0x10000040");
        await Expect(Why).ToHaveAttributeAsync("data-outcome", "unmapped");
        await Expect(Why).ToHaveAttributeAsync("data-memtype", "");
        await Expect(Map).ToHaveAttributeAsync("data-selected-block", "");
        await Expect(Scrubber).ToHaveAttributeAsync("data-at", "26");
        await Shot("bar-unmapped-at-end");
    }

    [SkippableFact]
    public async Task The_scrubber_marks_the_runs_lint_findings_at_the_seqs_they_cite()
    {
        // audit lint gh: the instruction fetch from the BAR (seq 18) and dirty logging left on (seq 20).
        await Open("/?run=gh");
        await Expect(Scrubber).ToHaveAttributeAsync("data-findings", new System.Text.RegularExpressions.Regex(@"exec-noncacheable@18"));
        await Expect(Scrubber).ToHaveAttributeAsync("data-findings", new System.Text.RegularExpressions.Regex(@"dirty-log-left-on@20"));
        await Shot("lint-markers");
    }

    [SkippableFact]
    public async Task The_5_14_comparison_marks_the_bar_and_gpu_blocks_and_jumps_to_the_first_divergence()
    {
        await Open("/?run=gh&policy=arm64/5.14");
        await Expect(Map).ToHaveAttributeAsync("data-marked", new System.Text.RegularExpressions.Regex("0x10000000"));
        var marked = (await Map.GetAttributeAsync("data-marked"))!.Split(',');
        Assert.Equal(["0x10000000", "0x40000000000"], marked.Order().ToArray());
        await Shot("compare-5.14-overlaid");

        await _page.Locator("#first-divergence").ClickAsync();
        // The first difference is the GPU's fault (input seq 14), decided at seq 15: its 1G block is selected.
        await Expect(Scrubber).ToHaveAttributeAsync("data-at", "15");
        await Expect(Why).ToHaveAttributeAsync("data-gpa", "0x40000000000");
        await Expect(Why.Locator(".verdict")).ToContainTextAsync("Normal");
        await _page.Locator("#compare-view").SelectOptionAsync("side");
        await Expect(_page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("view=side"));
        await Shot("compare-5.14-side-by-side");
    }

    [SkippableFact]
    public async Task A_diff_with_a_second_run_marks_the_differing_blocks_and_jumps_to_the_first_divergence()
    {
        // Asks the server before opening a page: without a browser the server was not started either.
        Skip.If(server.Problem is not null, server.Problem);
        // What GET /diff says of the two runs is what the page must show: every differing decision's block marked.
        using var diff = JsonDocument.Parse(await server.Http.GetStringAsync($"{server.BaseUrl}/diff?a=gh&b={UiServer.SecondRun}"));
        var differences = diff.RootElement.GetProperty("differences").EnumerateArray().Select(d => d.GetProperty("a")).ToList();
        var blocks = differences.Select(a => a.GetProperty("decision").GetProperty("gpa").GetString()!).Distinct().Order().ToArray();
        Assert.Contains("0x10000000", blocks);
        Assert.Contains("0x40000000000", blocks);

        await Open($"/?run=gh&diff={UiServer.SecondRun}");
        await Expect(_page.Locator("#compare-title")).ToContainTextAsync($"diff with run {UiServer.SecondRun}: {differences.Count} of");
        await Expect(Map).ToHaveAttributeAsync("data-marked", new System.Text.RegularExpressions.Regex("0x40000000000"));
        Assert.Equal(blocks, (await Map.GetAttributeAsync("data-marked"))!.Split(',').Distinct().Order().ToArray());
        await Shot("diff-with-second-run");

        // The earliest differing decision (here a RAM block's permissions, before the BAR and the GPU's).
        var first = differences.MinBy(a => a.GetProperty("seq").GetInt64());
        await _page.Locator("#first-divergence").ClickAsync();
        await Expect(Scrubber).ToHaveAttributeAsync("data-at", first.GetProperty("seq").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture));
        await Expect(Map).ToHaveAttributeAsync("data-at", first.GetProperty("seq").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture));
        await Expect(Why).ToHaveAttributeAsync("data-gpa", first.GetProperty("decision").GetProperty("gpa").GetString()!);
        await Expect(_page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex($"diff={System.Text.RegularExpressions.Regex.Escape(UiServer.SecondRun)}"));
        await Shot("diff-first-divergence");
    }

    [SkippableFact]
    public async Task A_bad_run_id_shows_the_servers_error_in_the_page()
    {
        await Open("/?run=no-such-run");
        await Expect(_page.Locator("#error")).ToBeVisibleAsync();
        await Expect(_page.Locator("#error-text")).ToContainTextAsync("no run 'no-such-run'");
        await Shot("bad-run-error");
    }

    [SkippableFact]
    public async Task Arrow_keys_step_one_event_and_shift_arrows_one_change_of_the_selected_page()
    {
        await Open("/?run=gh&at=20&gpa=0x10000040");
        await Expect(_page.Locator("#history li")).Not.ToHaveCountAsync(0);
        await Scrubber.FocusAsync();
        await _page.Keyboard.PressAsync("ArrowRight");
        await Expect(Scrubber).ToHaveAttributeAsync("data-at", "21");
        await _page.Keyboard.PressAsync("ArrowLeft");
        await _page.Keyboard.PressAsync("ArrowLeft");
        await Expect(Scrubber).ToHaveAttributeAsync("data-at", "19");
        // A step replaces the URL a moment later (one replace per 250 ms while keys or a drag move it): the last one lands.
        await Expect(_page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("at=19(&|$)"));

        // The page's changes, as the history endpoint lists them: shift steps to the nearest one each way.
        using var doc = JsonDocument.Parse(await server.Http.GetStringAsync(server.BaseUrl + "/runs/gh/history?gpa=0x10000040"));
        var seqs = doc.RootElement.GetProperty("changes").EnumerateArray().Select(c => c.GetProperty("seq").GetInt64()).Distinct().Order().ToList();
        var before = seqs.Last(s => s < 19);
        var after = seqs.First(s => s > before);
        await _page.Keyboard.PressAsync("Shift+ArrowLeft");
        await Expect(Scrubber).ToHaveAttributeAsync("data-at", before.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await _page.Keyboard.PressAsync("Shift+ArrowRight");
        await Expect(Scrubber).ToHaveAttributeAsync("data-at", after.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await Expect(Map).ToHaveAttributeAsync("data-at", after.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [SkippableFact]
    public async Task Dragging_the_scrubber_moves_at_and_the_map_follows()
    {
        await Open("/?run=gh&at=26");
        var box = (await _page.Locator("#timeline-canvas").BoundingBoxAsync())!;
        await _page.Mouse.MoveAsync(box.X + (box.Width * 0.95f), box.Y + 20);
        await _page.Mouse.DownAsync();
        // Seq k sits at ((k - 0.5) / 26) of the width; seq 5 is the first memslot's decision.
        await _page.Mouse.MoveAsync(box.X + (box.Width * 0.6f), box.Y + 20, new() { Steps = 5 });
        await _page.Mouse.MoveAsync(box.X + (box.Width * (4.6f / 26)), box.Y + 20, new() { Steps = 5 });
        await _page.Mouse.UpAsync();
        await Expect(Scrubber).ToHaveAttributeAsync("data-at", "5");
        await Expect(Map).ToHaveAttributeAsync("data-at", "5");
        await Expect(Map).ToHaveAttributeAsync("data-blocks", "0");
        await Expect(_page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("at=5"));
        await Shot("scrubbed-to-5");
    }

    [SkippableFact]
    public async Task The_search_box_finds_a_host_address_and_an_event_type()
    {
        await Open("/?run=gh&at=20");
        await _page.Locator("#search").FillAsync("0xfffd00000040");
        await _page.Locator("#search").PressAsync("Enter");
        // The BAR's hva, through memslot 2, is the BAR page's gpa.
        await Expect(Why).ToHaveAttributeAsync("data-gpa", "0x10000000");
        await _page.Locator("#search").FillAsync("stage2_unmapped");
        await _page.Locator("#search").PressAsync("Enter");
        await Expect(Scrubber).ToHaveAttributeAsync("data-at", "26");
        await _page.Locator("#search").FillAsync("NoSuchEvent");
        await _page.Locator("#search").PressAsync("Enter");
        await Expect(_page.Locator("#error-text")).ToContainTextAsync("not an event type");
    }

    [SkippableFact]
    public async Task Searching_a_rule_id_with_no_page_open_goes_to_the_decision_that_cites_it()
    {
        // Asks the server before opening a page: without a browser the server was not started either.
        Skip.If(server.Problem is not null, server.Problem);
        using var why = JsonDocument.Parse(await server.Http.GetStringAsync(server.BaseUrl + "/runs/gh/why?gpa=0x10000040&at=20"));
        var decided = why.RootElement.GetProperty("mapping").GetProperty("decidedAt").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture);
        // From just before the BAR page's decision (an earlier decision, of another page, cites the rule too).
        await Open($"/?run=gh&at={long.Parse(decided, System.Globalization.CultureInfo.InvariantCulture) - 1}");
        await _page.Locator("#search").FillAsync(ForceNc);
        await _page.Locator("#search").PressAsync("Enter");
        await Expect(Scrubber).ToHaveAttributeAsync("data-at", decided);
        await Expect(Why).ToHaveAttributeAsync("data-gpa", "0x10000000");
        await Expect(Why.Locator($"li[data-rule='{ForceNc}']")).ToHaveClassAsync(new System.Text.RegularExpressions.Regex("found"));
        await Expect(Map).ToHaveAttributeAsync("data-selected-block", "0x10000000 NormalNC 2M rw-");
        await Shot("rule-search-found-the-bar");
        await _page.Locator("#search").FillAsync("arm64.no_such_rule");
        await _page.Locator("#search").PressAsync("Enter");
        await Expect(_page.Locator("#error-text")).ToContainTextAsync("not a rule id");
    }

    [SkippableFact]
    public async Task A_run_of_over_a_million_events_is_linted_only_when_asked()
    {
        Skip.If(server.Problem is not null, server.Problem);

        // The page judges a run's length by its timeline's last seq: gh's answer is made to say two million.
        await _page.RouteAsync("**/runs/gh/timeline*", async route =>
        {
            var response = await route.FetchAsync();
            var body = System.Text.Json.Nodes.JsonNode.Parse(await response.TextAsync())!;
            body["lastSeq"] = 2_000_000;
            await route.FulfillAsync(new() { Response = response, Body = body.ToJsonString() });
        });
        var lints = 0;
        _page.Request += (_, r) =>
        {
            if (r.Url.Contains("/runs/gh/lint", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref lints);
            }
        };

        await Open("/?run=gh&at=20");
        var button = _page.Locator("#lint-run");
        await Expect(button).ToBeVisibleAsync();
        await Expect(Scrubber).Not.ToHaveAttributeAsync("data-findings", new System.Text.RegularExpressions.Regex("."));
        Assert.Equal(0, lints);
        await Shot("long-run-lint-button");

        await button.ClickAsync();
        await Expect(Scrubber).ToHaveAttributeAsync("data-findings", new System.Text.RegularExpressions.Regex(@"\bexec-noncacheable@18\b"));
        await Expect(button).ToBeHiddenAsync();
        Assert.Equal(1, lints);
    }

    [SkippableFact]
    public async Task A_guarded_server_makes_the_page_ask_for_the_token_once_and_send_it()
    {
        // The first call the server guards (today the replay, a POST; reads too once every endpoint is
        // guarded) makes the page ask for the token; every call after it sends the token without asking.
        await Open("/?run=gh&policy=arm64/5.14", server.GuardedUrl, ready: false);
        var dialog = _page.Locator("#token-dialog");
        await Expect(dialog).ToBeVisibleAsync();
        await _page.Locator("#token-input").FillAsync(UiServer.Token);
        await _page.Locator("#token-dialog button[value=ok]").ClickAsync();
        await Expect(Map).ToHaveAttributeAsync("data-marked", new System.Text.RegularExpressions.Regex("0x40000000000"));
        await Expect(Map).ToHaveAttributeAsync("data-kinds", "Normal");
        await _page.Locator("#compare").SelectOptionAsync("policy:arm64/5.10");
        await Expect(_page.Locator("#compare-title")).ToContainTextAsync("arm64/5.10");
        await Expect(dialog).Not.ToBeVisibleAsync();
    }
}
