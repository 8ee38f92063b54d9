using Audit.Domain.Events;
using Audit.Tests.Cli;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Import;

/// <summary>`ingest DIR` and the stage-2 dump beside a run, through the command line and a real database.</summary>
public sealed class CaptureFolderTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private static string Real(string name) => Path.Combine(Paths.Samples, "real", "x86-pvm-6.18", name);

    [Fact]
    public async Task A_capture_folder_is_one_run_and_every_file_left_out_is_named_with_why()
    {
        var dir = Directory.CreateTempSubdirectory("capture-");
        try
        {
            foreach (var f in new[] { "strace.txt", "trace.txt", "trace_fields.txt", "perf_script.txt", "bpftrace_ioctls.txt", "smaps_phase1.txt" })
            {
                File.Copy(Real(f), Path.Combine(dir.FullName, f));
            }

            await File.WriteAllTextAsync(Path.Combine(dir.FullName, "notes.txt"), "ran the probe VMM\nLinux kvmhost 6.18.0-rc4 #12 SMP PREEMPT_DYNAMIC Mon Nov 30 10:00:00 UTC 2026 x86_64 GNU/Linux\n");
            await File.WriteAllBytesAsync(Path.Combine(dir.FullName, "trace.dat"), [0x17, 0x08, 0x44, 0x74, 0x72, 0x61, 0x63, 0x69, 0x6e, 0x67, 0]);
            dir.CreateSubdirectory("capture");

            var r = await CliRunner.RunAsync(ConnectionString, "ingest", dir.FullName);
            Assert.True(r.Exit == 0, r.Err);
            var run = dir.Name;
            Assert.Contains($"{run}: ", r.Out, StringComparison.Ordinal);
            Assert.Contains("skipped capture/: a folder", r.Out, StringComparison.Ordinal);
            Assert.Contains("skipped trace.dat: binary", r.Out, StringComparison.Ordinal);
            Assert.Contains("skipped notes.txt: not a trace (read for the kernel release it names)", r.Out, StringComparison.Ordinal);
            Assert.Contains("skipped perf_script.txt: another recording", r.Out, StringComparison.Ordinal);
            Assert.Contains("skipped trace_fields.txt: the same kernel events as trace.txt", r.Out, StringComparison.Ordinal);
            Assert.Contains("x86_64 6.18.0-rc4 shadow paging, decided under x86-shadow", r.Out, StringComparison.Ordinal);
            Assert.Contains("notes.txt:2", r.Out, StringComparison.Ordinal);

            // The same run as naming its files: strace, bpftrace, trace and smaps (as RealCaptureTests).
            Assert.Equal(112, await ScalarAsync("select count(*) from events where run_id = $1 and type = 'guest_faulted'", run));
            Assert.Equal(12, await ScalarAsync("select count(*) from events where run_id = $1 and type = 'memslot_set'", run));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_folder_with_no_trace_in_it_is_bad_input_naming_each_file()
    {
        var dir = Directory.CreateTempSubdirectory("empty-capture-");
        try
        {
            await File.WriteAllTextAsync(Path.Combine(dir.FullName, "readme.txt"), "nothing here\n");
            await File.WriteAllTextAsync(Path.Combine(dir.FullName, "uname.txt"), "6.18.0-rc4\n");
            var r = await CliRunner.RunAsync(ConnectionString, "ingest", dir.FullName);
            Assert.Equal(2, r.Exit);
            Assert.Contains("no file in the folder is a trace this tool reads: readme.txt: not a trace format this tool reads; uname.txt: not a trace (read for the kernel release it names)", r.Err, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_stage2_dump_beside_an_arm64_run_agrees_where_the_model_mapped_the_same_and_diverges_elsewhere()
    {
        var dump = Path.Combine(Path.GetTempPath(), $"stage2-{Guid.NewGuid():N}.txt");
        await File.WriteAllLinesAsync(dump,
        [
            "# time: 1900000000",
            "---[ Guest IPA ]---",
            KernelStateImportTests.DumpLine(0, 0x40000000000, "4T", 0),
            KernelStateImportTests.DumpLine(0x40000000000, 0x40040000000, "1G", 1, KernelStateImportTests.RwxBlock),
            KernelStateImportTests.DumpLine(0x40040000000, 0x40040200000, "2M", 2, KernelStateImportTests.ReadOnlyNoExecPage.Replace("    ", " BLK", StringComparison.Ordinal)),
        ]);
        try
        {
            var r = await CliRunner.RunAsync(ConnectionString, "ingest", Path.Combine(Paths.Samples, "gh200-gpu-passthrough.ndjson"), dump, "--run", "gh");
            Assert.True(r.Exit == 0, r.Err);
            var divergences = new List<DivergenceFound>();
            await foreach (var e in Store().ReadAsync("gh"))
            {
                if (e.Event is DivergenceFound d)
                {
                    divergences.Add(d);
                }
            }

            // The GPU memory's 1G rwx block is what the model mapped; the 2M read-only block is where it saw no fault.
            var d2 = Assert.Single(divergences, d => d.Kernel.Contains("at 0x40040000000", StringComparison.Ordinal));
            Assert.Equal("? 2M r-- at 0x40040000000", d2.Kernel);
            Assert.DoesNotContain(divergences, d => d.Kernel.Contains("at 0x40000000000", StringComparison.Ordinal));
        }
        finally
        {
            File.Delete(dump);
        }
    }
}
