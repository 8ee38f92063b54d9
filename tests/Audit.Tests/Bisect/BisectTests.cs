using System.Net;
using System.Text.Json;
using Audit.Api.Features.Bisect;
using Audit.Api.Http;
using Audit.Domain.Model;
using Audit.Tests.Cli;
using Audit.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;

namespace Audit.Tests.Bisect;

/// <summary>`audit bisect` on the bundled GH200 run: which release changed each decision, and which rule.</summary>
public sealed class BisectTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private Task<JsonElement> Json(params string[] args) => CliRunner.JsonAsync(ConnectionString, args);

    private Task IngestGh() => CliRunner.IngestSampleAsync(ConnectionString, "gh200-gpu-passthrough.ndjson", "gh");

    private static JsonElement RowAt(JsonElement bisect, string what) =>
        bisect.GetProperty("rows").EnumerateArray().Single(r => r.GetProperty("what").GetString() == what);

    private static List<string> ChangeReleases(JsonElement row) =>
        row.GetProperty("changes").EnumerateArray().Select(c => c.GetProperty("at").GetString()!).ToList();

    [Fact]
    public async Task Bisect_of_gh_names_6_9_for_the_bar_and_6_17_for_the_gpu_memory()
    {
        await IngestGh();
        var b = await Json("bisect", "gh");
        Assert.Equal("arm64", b.GetProperty("flavour").GetString());

        var bar = RowAt(b, "0x10000000 2M");
        Assert.Contains("6.9", ChangeReleases(bar));
        var to69 = bar.GetProperty("changes").EnumerateArray().Single(c => c.GetProperty("at").GetString() == "6.9");
        Assert.Equal(("Device 2M rw-", "NormalNC 2M rw-"), (to69.GetProperty("before").GetString(), to69.GetProperty("after").GetString()));
        Assert.NotEmpty(to69.GetProperty("rules").EnumerateArray());
        var spans = bar.GetProperty("spans").EnumerateArray().ToList();
        Assert.Equal(("5.14", "6.8"), (spans[^2].GetProperty("from").GetString(), spans[^2].GetProperty("to").GetString()));

        var gpu = RowAt(b, "0x40000000000 1G");
        Assert.Contains("6.17", ChangeReleases(gpu));
        Assert.DoesNotContain("6.9", ChangeReleases(gpu));
        var to617 = gpu.GetProperty("changes").EnumerateArray().Single(c => c.GetProperty("at").GetString() == "6.17");
        Assert.Contains("arm64.user_mem_abort.cacheable_pfnmap", to617.GetProperty("rules").EnumerateArray().Select(r => r.GetString()));

        // Guest RAM on hugetlb decides the same under every release: no row.
        Assert.Equal(2, b.GetProperty("rows").GetArrayLength());

        var text = await CliRunner.RunAsync(ConnectionString, "bisect", "gh");
        Assert.Contains("0x10000000 2M: Device 4K rw- (5.10-5.13) -> Device 2M rw- (5.14-6.8) -> NormalNC 2M rw- from 6.9", text.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task From_to_and_gpa_narrow_the_bisection()
    {
        await IngestGh();
        var bar = await Json("bisect", "gh", "--gpa", "0x10000000+0x1000000", "--from", "5.14", "--to", "6.12");
        var row = Assert.Single(bar.GetProperty("rows").EnumerateArray());
        Assert.Equal(["6.9"], ChangeReleases(row));
        Assert.Equal(("5.14", "6.12"), (bar.GetProperty("releases")[0].GetProperty("from").GetString(), bar.GetProperty("releases").EnumerateArray().Last().GetProperty("to").GetString()));

        Assert.Empty((await Json("bisect", "gh", "--from", "6.17")).GetProperty("rows").EnumerateArray());
        Assert.Equal(2, (await CliRunner.RunAsync(ConnectionString, "bisect", "gh", "--from", "4.4")).Exit);
        Assert.Equal(2, (await CliRunner.RunAsync(ConnectionString, "bisect", "gh", "--from", "6.9", "--to", "6.1")).Exit);
        Assert.Equal(2, (await CliRunner.RunAsync(ConnectionString, "bisect", "gh", "--gpa", "zz")).Exit);
        Assert.Equal(1, (await CliRunner.RunAsync(ConnectionString, "bisect", "nope")).Exit);
    }

    [Fact]
    public async Task Http_bisect_answers_the_same_body_and_writes_nothing()
    {
        await IngestGh();
        var before = await ScalarAsync("select count(*) from events");
        var app = HttpApp.Build([], DataSource, options: new HttpOptions(null, 1 << 20), configure: b => b.WebHost.UseTestServer());
        await app.StartAsync();
        await using var _ = app;
        var client = app.GetTestClient();

        var body = JsonDocument.Parse(await client.GetStringAsync("/runs/gh/bisect?gpa=0x40000000000%2B0x400000000")).RootElement;
        Assert.Equal(["5.14", "6.17"], ChangeReleases(Assert.Single(body.GetProperty("rows").EnumerateArray())));
        Assert.Equal(HttpStatusCode.BadRequest, (await client.GetAsync("/runs/gh/bisect?from=banana")).StatusCode);
        Assert.Equal(before, await ScalarAsync("select count(*) from events"));
    }

    [Fact]
    public void Release_spans_of_a_flavour_are_contiguous_from_5_10_to_6_18()
    {
        foreach (var flavour in new[] { "arm64/6.17", "x86-vmx/6.16", "x86-svm", "x86-shadow" })
        {
            var spans = Releases.Of(Policies.Find(flavour)!);
            Assert.Equal((new KernelVersion(5, 10), new KernelVersion(6, 18)), (spans[0].From, spans[^1].To));
            Assert.All(spans.Zip(spans.Skip(1)), p => Assert.Equal(p.Second.From.Previous, p.First.To));
        }

        // A span ends where the next begins; arm64 changes at least at 5.14, 6.9 and 6.17.
        var arm64 = Releases.Of(Policies.Find("arm64/6.17")!).Select(r => r.From).ToList();
        Assert.Subset(arm64.ToHashSet(), new[] { new KernelVersion(5, 14), new KernelVersion(6, 9), new KernelVersion(6, 17) }.ToHashSet());
    }
}

/// <summary>The pure bisection over a run built in memory.</summary>
public sealed class BisectionTests
{
    [Fact]
    public void A_device_bar_without_allow_any_uncached_never_changes_and_progress_is_told_per_release_when_asked()
    {
        var s = Audit.Tests.Domain.Scenario.Arm64();
        s.Vma(0x7f1000000000, 0x1000000, Audit.Tests.Domain.Scenario.PfnFlags, Audit.Domain.Events.HostMemType.MT_DEVICE_nGnRnE, Audit.Tests.Domain.Scenario.Vfio(0x66000000));
        s.Slot(2, 0x10000000, 0x1000000, 0x7f1000000000);
        s.Fault(0x10000040, Audit.Domain.Events.Access.Write);
        var inputs = s.Log.Select(x => (x.Seq, x.Input)).ToList();
        var releases = Releases.Of(s.State.Policy);
        var told = new List<string>();

        var rows = Bisection.Run(inputs, releases, progress: told.Add);

        // Without VM_ALLOW_ANY_UNCACHED only the block size changes (4K PFNMAP before 5.14), never the type.
        var row = Assert.Single(rows);
        Assert.Equal(["5.14"], row.Changes.Select(c => c.At));
        Assert.All(row.Spans, x => Assert.StartsWith("Device", x.Decision, StringComparison.Ordinal));
        Assert.Equal(releases.Count, told.Count);
        Assert.Empty(Bisection.Run(inputs, releases, gpa: (0x40000000, 0x80000000)));
    }
}
