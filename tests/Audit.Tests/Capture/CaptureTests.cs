using System.Diagnostics;
using Audit.Api.Features.Capture;
using Audit.Tests.Cli;
using Audit.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Audit.Tests.Capture;

/// <summary>Saving and restoring the tracing state, on a folder shaped like tracefs (runs everywhere).</summary>
public sealed class TracefsStateTests
{
    [Fact]
    public void Configure_then_restore_puts_every_setting_back_as_it_was()
    {
        var root = Directory.CreateTempSubdirectory("fake-tracefs-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "events", "kvm"));
            Directory.CreateDirectory(Path.Combine(root, "events", "kvmmmu"));
            Directory.CreateDirectory(Path.Combine(root, "options"));
            var before = new Dictionary<string, string>
            {
                ["tracing_on"] = "1\n", ["trace_clock"] = "[local] global counter mono\n", ["buffer_size_kb"] = "1408\n",
                ["set_event"] = "sched:sched_switch\nirq:irq_handler_entry\n", ["set_event_pid"] = "", ["options/event-fork"] = "0\n", ["trace"] = "# tracer: nop\n",
            };
            foreach (var (f, v) in before)
            {
                File.WriteAllText(Path.Combine(root, f), v);
            }

            var t = Tracefs.Open(root);
            t.Save();
            t.Configure();
            t.Start(4242);
            Assert.Equal(["kvm:*", "kvmmmu:*"], File.ReadAllLines(Path.Combine(root, "set_event")));
            Assert.Equal("mono", File.ReadAllText(Path.Combine(root, "trace_clock")).Trim());
            Assert.Equal("4242", File.ReadAllText(Path.Combine(root, "set_event_pid")).Trim());

            Assert.Empty(t.Restore());
            Assert.Equal(["sched:sched_switch", "irq:irq_handler_entry"], File.ReadAllLines(Path.Combine(root, "set_event")));
            Assert.Equal("local", File.ReadAllText(Path.Combine(root, "trace_clock")).Trim());
            Assert.Equal("", File.ReadAllText(Path.Combine(root, "set_event_pid")).Trim());
            foreach (var f in new[] { "tracing_on", "buffer_size_kb", "options/event-fork" })
            {
                Assert.Equal(before[f].Trim(), File.ReadAllText(Path.Combine(root, f)).Trim());
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}

/// <summary>
/// `audit capture` on this host's real KVM with our probe VMM (tests/probe/probe_vmm.c). Skips, saying why,
/// without root, /dev/kvm, tracefs, strace or gcc.
/// </summary>
public sealed class CaptureTests(ITestOutputHelper output, SchemaFixture schema) : DatabaseTest(schema)
{
    [SkippableFact]
    public async Task A_probe_vmm_run_is_captured_ingested_and_tracing_is_restored()
    {
        var problem = CaptureCommand.Problem() ?? (File.Exists("/usr/bin/gcc") || File.Exists("/usr/local/bin/gcc") ? null : "gcc is not installed (the probe VMM is C)");
        if (problem is not null)
        {
            output.WriteLine("skipped: " + problem);
        }

        Skip.If(problem is not null, problem);
        var probe = Probe();
        var root = Tracefs.Root;
        var mountedBefore = File.Exists(Path.Combine(root, "set_event"));
        var eventsBefore = mountedBefore ? File.ReadAllText(Path.Combine(root, "set_event")) : null;
        var clockBefore = mountedBefore ? File.ReadAllText(Path.Combine(root, "trace_clock")) : null;
        var dir = Directory.CreateTempSubdirectory("audit-capture-").FullName;
        try
        {
            var r = await CliRunner.RunAsync(ConnectionString, "capture", "--run", "probe", "--out", dir, "--", probe);
            output.WriteLine(r.Out + r.Err);
            Assert.True(r.Exit == 0, r.Err);
            Assert.Contains("capture: tracing restored", r.Err, StringComparison.Ordinal);

            var counts = new Dictionary<string, long>();
            await foreach (var e in Store().ReadAsync("probe"))
            {
                counts[e.Type] = counts.GetValueOrDefault(e.Type) + 1;
            }

            // The probe sets two slots, moves one and deletes it; changes its mapping three ways.
            Assert.Equal(4, counts["memslot_set"]);
            Assert.Equal(4, counts["memslot_decided"]);
            Assert.True(counts["vma_protection_changed"] >= 2, "the probe's two mprotects (ld.so adds its own)");
            Assert.True(counts.GetValueOrDefault("vma_advised") >= 1 && counts.GetValueOrDefault("vma_unmapped") >= 1);
            Assert.True(File.ReadAllLines(Path.Combine(dir, "trace.txt")).Length > 12, "tracefs recorded no event");

            if (mountedBefore)
            {
                Assert.Equal(eventsBefore, File.ReadAllText(Path.Combine(root, "set_event")));
                Assert.Equal(clockBefore, File.ReadAllText(Path.Combine(root, "trace_clock")));
            }
            else
            {
                Assert.False(File.Exists(Path.Combine(root, "set_event")), "capture mounted tracefs and left it mounted");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The probe test.sh built, else built here.</summary>
    private static string Probe()
    {
        var built = Path.Combine(Paths.Repo, ".build", "probe_vmm");
        if (File.Exists(built))
        {
            return built;
        }

        var exe = Path.Combine(Path.GetTempPath(), $"probe_vmm-{Environment.ProcessId}");
        using var gcc = Process.Start("gcc", ["-O1", "-Wall", "-Werror", "-o", exe, Path.Combine(Paths.Repo, "tests", "probe", "probe_vmm.c")])!;
        gcc.WaitForExit();
        Assert.Equal(0, gcc.ExitCode);
        return exe;
    }
}
