using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Audit.Api.Http;
using Audit.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;

namespace Audit.Tests.Http;

/// <summary>The HTTP contract of interfaces.md, on the real host and a real PostgreSQL.</summary>
public sealed class HttpApiTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private const string Token = "t0ken";

    private async Task<(WebApplication App, HttpClient Client)> Start(HttpOptions? options = null)
    {
        var app = HttpApp.Build([], DataSource, options: options ?? new HttpOptions(Token, 64 * 1024), configure: b => b.WebHost.UseTestServer());
        await app.StartAsync();
        var client = app.GetTestClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token);
        return (app, client);
    }

    private static HttpRequestMessage Post(string url, string body, string? key = null)
    {
        var req = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(body, Encoding.UTF8, "application/x-ndjson") };
        if (key is not null)
        {
            req.Headers.Add("Idempotency-Key", key);
        }

        return req;
    }

    /// <summary>Sends from a client that has no token.</summary>
    private static Task<HttpResponseMessage> SendAnonymous(WebApplication app, HttpRequestMessage req) => app.GetTestClient().SendAsync(req);

    private static async Task<JsonElement> Json(HttpResponseMessage r) => JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement;

    private static string Gh => File.ReadAllText(Path.Combine(Paths.Samples, "gh200-gpu-passthrough.ndjson"));

    [Fact]
    public async Task Posting_events_stores_them_once_per_idempotency_key_and_answers_why()
    {
        var (app, client) = await Start();
        await using var _ = app;
        var first = await client.SendAsync(Post("/runs/gh-posted/events", Gh, key: "batch-1"));
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var again = await client.SendAsync(Post("/runs/gh-posted/events", Gh, key: "batch-1"));
        Assert.Equal("duplicate", (await Json(again)).GetProperty("status").GetString());
        Assert.Equal(15, await ScalarAsync("select count(*) from events where run_id = 'gh-posted' and type = 'guest_faulted' or run_id = 'gh-posted' and type in ('host_described','vm_created','vma_mapped','memslot_set','vma_unmapped')"));

        var why = await Json(await client.GetAsync("/runs/gh-posted/why?gpa=0x40000200000"));
        Assert.Equal("Normal", why.GetProperty("mapping").GetProperty("memType").GetString());
        Assert.Equal(1UL << 30, why.GetProperty("mapping").GetProperty("size").GetUInt64());
        var runs = await Json(await client.GetAsync("/runs"));
        Assert.Contains(runs.EnumerateArray(), r => r.GetProperty("run").GetString() == "gh-posted");
        Assert.Equal(3, (await Json(await client.GetAsync("/runs/gh-posted/state?at=19&gpa=0x0-0x50000000000"))).GetProperty("stage2").GetArrayLength());
        Assert.NotEmpty((await Json(await client.GetAsync("/runs/gh-posted/history?gpa=0x10000040"))).GetProperty("changes").EnumerateArray());
    }

    [Fact]
    public async Task Every_request_but_healthz_and_the_ui_needs_the_bearer_token_when_one_is_configured()
    {
        var (app, client) = await Start();
        await using var _ = app;
        var r = await SendAnonymous(app, Post("/runs/guarded/events", Gh));
        Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        Assert.Equal("Bearer", r.Headers.WwwAuthenticate.Single().Scheme);
        var wrong = Post("/runs/guarded/events", Gh);
        wrong.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "nope");
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAnonymous(app, wrong)).StatusCode);
        var longer = Post("/runs/guarded/events", Gh);
        longer.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Token + "x");
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAnonymous(app, longer)).StatusCode);
        Assert.Equal(0, await ScalarAsync("select count(*) from events where run_id = 'guarded'"));
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(Post("/runs/guarded/events", Gh))).StatusCode);

        // Reads reveal host addresses and VM layouts: they need it too; the health check and the UI's files do not.
        foreach (var read in new[] { "/runs", "/runs/guarded/why?gpa=0x40000200000", "/runs/guarded/state", "/runs/guarded/history?gpa=0x1000", "/diff?a=guarded&b=guarded", "/runs/guarded/export", "/runs/guarded/map", "/runs/guarded/timeline", "/runs/guarded/find?type=MemslotSet", "/runs/guarded/lint", "/runs/guarded/bisect", "/policies", "/openapi/v1.json", "/runs/guarded.js", "/ui/../runs" })
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await SendAnonymous(app, new HttpRequestMessage(HttpMethod.Get, read))).StatusCode);
        }

        Assert.Equal(HttpStatusCode.OK, (await SendAnonymous(app, new HttpRequestMessage(HttpMethod.Get, "/healthz"))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await SendAnonymous(app, new HttpRequestMessage(HttpMethod.Get, "/"))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/runs")).StatusCode);
    }

    [Theory]
    [InlineData("/runs/a%20b/why?gpa=0x1000")]
    [InlineData("/runs/..%2Fetc/state")]
    [InlineData("/runs/-x/history?gpa=0x1000")]
    [InlineData("/diff?a=gh&b=a%3Bb")]
    public async Task A_run_id_with_characters_outside_the_allowed_set_is_a_400_naming_the_rule(string url)
    {
        var (app, client) = await Start();
        await using var _ = app;
        var r = await client.GetAsync(url);
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.Contains("may hold only letters, digits", (await Json(r)).GetProperty("detail").GetString(), StringComparison.Ordinal);
        var tooLong = await client.SendAsync(Post("/runs/" + new string('a', 129) + "/events", Gh));
        Assert.Equal(HttpStatusCode.BadRequest, tooLong.StatusCode);
        Assert.Equal(0, await ScalarAsync("select count(*) from runs where run_id = $1", new string('a', 129)));
    }

    [Theory]
    [InlineData("a%20b")]
    [InlineData("..%2Fx")]
    [InlineData("%C3%BC")]
    [InlineData("")]
    public async Task A_replay_saved_under_a_bad_run_id_is_a_400_and_stores_nothing(string save)
    {
        var (app, client) = await Start();
        await using var _ = app;
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(Post("/runs/gh-saved/events", Gh, key: "gh-saved"))).StatusCode);
        var r = await client.SendAsync(Post($"/runs/gh-saved/replay?policy=arm64/5.14&save={save}", ""));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        Assert.StartsWith("save: ", (await Json(r)).GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(1, await ScalarAsync("select count(*) from runs where run_id like 'gh-saved%' or run_id = $1", Uri.UnescapeDataString(save)));
    }

    [Fact]
    public async Task Bad_input_is_a_problem_naming_the_line_and_stores_nothing()
    {
        var (app, client) = await Start();
        await using var _ = app;
        var lines = Gh.Split('\n').Where(l => l.StartsWith('{')).ToList();
        lines[3] = "{\"type\":\"Nope\"}";
        var r = await client.SendAsync(Post("/runs/bad/events", string.Join('\n', lines)));
        Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        var problem = await Json(r);
        Assert.Equal(4, problem.GetProperty("line").GetInt32());
        Assert.Contains("body:4: unknown event type 'Nope'", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, await ScalarAsync("select count(*) from runs where run_id = 'bad'"));

        Assert.Equal(HttpStatusCode.BadRequest, (await client.GetAsync("/runs/gh/why?gpa=0xZZ")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/runs/none/why?gpa=0x1000")).StatusCode);
    }

    [Fact]
    public async Task A_stale_expected_version_is_a_409_conflict()
    {
        var (app, client) = await Start();
        await using var _ = app;
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(Post("/runs/v/events?expectedVersion=0", Gh))).StatusCode);
        var stale = await client.SendAsync(Post("/runs/v/events?expectedVersion=0", """{"type":"GuestFaulted","gpa":"0x40001000","access":"read"}"""));
        Assert.Equal(HttpStatusCode.Conflict, stale.StatusCode);
        Assert.Contains("version 26", (await Json(stale)).GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_body_over_the_limit_is_a_413()
    {
        var (app, client) = await Start(new HttpOptions(null, 2048));
        await using var _ = app;
        var r = await SendAnonymous(app, Post("/runs/big/events", Gh));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, r.StatusCode);
        Assert.Equal(0, await ScalarAsync("select count(*) from events where run_id = 'big'"));
    }

    [Fact]
    public async Task Import_replay_diff_and_export_work_over_http()
    {
        var (app, client) = await Start();
        await using var _ = app;
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(Post("/runs/gh-imported/import?format=ndjson", Gh))).StatusCode);
        var replay = await Json(await client.SendAsync(Post("/runs/gh-imported/replay?policy=arm64/5.14&save=gh-imported514", "")));
        Assert.Equal(2, replay.GetProperty("summary").GetProperty("faultsDiffering").GetInt32());
        Assert.All(replay.GetProperty("differences").EnumerateArray(), d => Assert.Equal("Device", d.GetProperty("after").GetProperty("memType").GetString()));

        var diff = await Json(await client.GetAsync("/diff?a=gh-imported&b=gh-imported514"));
        Assert.Equal(2, diff.GetProperty("differing").GetInt32());
        Assert.Equal("0x40000200000", diff.GetProperty("first").GetProperty("key").GetString()!["gpa ".Length..]);

        var ndjson = await client.GetStringAsync("/runs/gh-imported/export?format=ndjson");
        Assert.Equal(15, ndjson.Split('\n').Count(l => l.StartsWith('{')));
        var perfetto = await Json(await client.GetAsync("/runs/gh-imported/export?format=perfetto"));
        Assert.True(perfetto.GetProperty("traceEvents").GetArrayLength() > 10);
        Assert.Equal(HttpStatusCode.BadRequest, (await client.GetAsync("/runs/gh-imported/export?format=pdf")).StatusCode);
    }

    [Fact]
    public async Task The_openapi_document_and_the_web_ui_are_served()
    {
        var (app, client) = await Start();
        await using var _ = app;
        var doc = await Json(await client.GetAsync("/openapi/v1.json"));
        var paths = doc.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        foreach (var p in new[] { "/runs", "/runs/{run}/why", "/runs/{run}/state", "/runs/{run}/history", "/runs/{run}/events", "/runs/{run}/import", "/runs/{run}/replay", "/diff", "/runs/{run}/export" })
        {
            Assert.Contains(p, paths);
        }

        var ui = await client.GetStringAsync("/");
        Assert.Contains("<select id=\"run\"", ui, StringComparison.Ordinal);
        Assert.Contains("/runs/", await client.GetStringAsync("/ui/api.js"), StringComparison.Ordinal);
    }
}
