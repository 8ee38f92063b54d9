using Audit.Projections.Embedded;
using Audit.Tests.Cli;

namespace Audit.Tests.Drills;

/// <summary>
/// kill -9 of the embedded PostgreSQL in the middle of an append, on a cluster of the drill's own
/// (the shared test cluster is not to be killed): the ingest exits 3 without a stack trace, nothing
/// of it is stored, and the next command recovers the database and succeeds.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
[Trait("Category", "Database")]
public sealed class EmbeddedCrashDrillTests
{
    [Fact]
    public async Task Killing_the_embedded_server_mid_append_exits_3_stores_nothing_and_the_next_command_or_serve_recovers()
    {
        var home = Path.Combine(Path.GetTempPath(), "audit-drill-" + Guid.NewGuid().ToString("N")[..8]);
        var env = new Dictionary<string, string> { ["AUDIT_HOME"] = home };
        var small = Path.Combine(Path.GetTempPath(), $"drill-small-{Guid.NewGuid():N}.ndjson");
        var big = Path.Combine(Path.GetTempPath(), $"drill-big-{Guid.NewGuid():N}.ndjson");
        await File.WriteAllLinesAsync(small, HostProcess.TraceLines(faults: 10, seed: 1));
        await File.WriteAllLinesAsync(big, HostProcess.TraceLines(faults: 60_000, seed: 2));
        try
        {
            Assert.Equal(0, (await HostProcess.RunAsync(["ingest", small, "--run", "small"], env)).Exit);
            var dataDir = new EmbeddedPostgres(home).Status().DataDir;

            CliResult crashed;
            using (var ingest = HostProcess.Start(["ingest", big, "--run", "big"], env))
            {
                var writing = await WaitForWritingBackendAsync(dataDir, ingest);
                Assert.True(writing, "the ingest ended before a backend was seen writing:\n" + ingest.Out + ingest.Err);
                KillPostmaster(dataDir);
                crashed = await ingest.WaitAsync();
            }

            Assert.True(crashed.Exit == 3, $"exit {crashed.Exit}:\n{crashed.Err}");
            Assert.Equal("", HostProcess.NoStackTrace(crashed));
            Assert.Contains("run the command again", crashed.Err, StringComparison.Ordinal);

            var runs = await HostProcess.RunAsync(["runs", "--json"], env);
            Assert.True(runs.Exit == 0, $"exit {runs.Exit}:\n{runs.Err}");
            Assert.Single(runs.Err.Split('\n'), l => l.StartsWith("recovered the embedded database", StringComparison.Ordinal));
            Assert.Contains("\"small\"", runs.Out, StringComparison.Ordinal);
            Assert.DoesNotContain("\"big\"", runs.Out, StringComparison.Ordinal);

            var retry = await HostProcess.RunAsync(["ingest", big, "--run", "big"], env);
            Assert.True(retry.Exit == 0, retry.Err);
            Assert.DoesNotContain("recovered", retry.Err, StringComparison.Ordinal);
            var check = await HostProcess.RunAsync(["db", "check", "--samples", "3"], env);
            Assert.True(check.Exit == 0, check.Out + check.Err);

            // Under serve: the requests that find the database gone are 503 and start its recovery; later ones work.
            using var serve = new ServeProcess([], env);
            await serve.StartAsync();
            Assert.Equal(System.Net.HttpStatusCode.OK, (await serve.Client.GetAsync("/runs")).StatusCode);
            KillPostmaster(dataDir);

            // Its idle backends answer until they notice the postmaster is gone.
            for (var i = 0; i < 100 && ServerProcessesIn(dataDir) > 0; i++)
            {
                await Task.Delay(100);
            }

            var statuses = new List<System.Net.HttpStatusCode>();
            for (var i = 0; i < 300 && statuses.LastOrDefault() != System.Net.HttpStatusCode.OK; i++)
            {
                using var r = await serve.Client.GetAsync("/runs");
                statuses.Add(r.StatusCode);
                await Task.Delay(statuses[^1] == System.Net.HttpStatusCode.OK ? 0 : 200);
            }

            Assert.Equal(System.Net.HttpStatusCode.OK, statuses[^1]);
            Assert.All(statuses, s => Assert.Contains(s, new[] { System.Net.HttpStatusCode.OK, System.Net.HttpStatusCode.ServiceUnavailable }));
            Assert.Contains(System.Net.HttpStatusCode.ServiceUnavailable, statuses);
            for (var i = 0; i < 50 && !serve.Err.Contains("recovered the embedded database", StringComparison.Ordinal); i++)
            {
                await Task.Delay(100);
            }

            Assert.True(serve.Err.Contains("recovered the embedded database", StringComparison.Ordinal), string.Join(",", statuses.Select(s => (int)s)) + "\n" + serve.Err);

            // Each 503 is one line on serve's console, never the exception's stack trace.
            Assert.Equal("", HostProcess.NoStackTrace(new CliResult(0, "", serve.Err)));
            Assert.Contains(": 503, the database went away", serve.Err, StringComparison.Ordinal);

            // A server that cannot start: exit 3 with the log's last lines and what to do; fixed, the next command works.
            serve.Kill();
            Assert.Equal(0, (await HostProcess.RunAsync(["db", "stop"], env)).Exit);
            var conf = Path.Combine(dataDir, "postgresql.conf");
            var original = await File.ReadAllBytesAsync(conf);
            await File.AppendAllTextAsync(conf, "\nshared_buffers = 'plenty'\n");
            var broken = await HostProcess.RunAsync(["runs"], env);
            await File.WriteAllBytesAsync(conf, original);
            Assert.True(broken.Exit == 3, $"exit {broken.Exit}:\n{broken.Err}");
            Assert.Contains("did not start", broken.Err, StringComparison.Ordinal);
            Assert.Contains("invalid value for parameter \"shared_buffers\"", broken.Err, StringComparison.Ordinal);
            Assert.Contains("What to do:", broken.Err, StringComparison.Ordinal);
            Assert.Equal("", HostProcess.NoStackTrace(broken));
            Assert.Equal(0, (await HostProcess.RunAsync(["runs"], env)).Exit);
        }
        finally
        {
            new EmbeddedPostgres(home).Destroy();
            File.Delete(small);
            File.Delete(big);
        }
    }

    /// <summary>Waits until a backend of this cluster runs a COPY or an insert, or holds a transaction open.</summary>
    private static async Task<bool> WaitForWritingBackendAsync(string dataDir, HostProcess ingest)
    {
        while (!ingest.HasExited)
        {
            foreach (var pid in Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(n => n!.All(char.IsAsciiDigit)))
            {
                try
                {
                    var cmdline = await File.ReadAllTextAsync($"/proc/{pid}/cmdline");
                    if (cmdline.StartsWith("postgres: audit audit", StringComparison.Ordinal)
                        && (cmdline.Contains("COPY", StringComparison.Ordinal) || cmdline.Contains("INSERT", StringComparison.Ordinal) || cmdline.Contains("in transaction", StringComparison.Ordinal))
                        && new FileInfo($"/proc/{pid}/cwd").LinkTarget == dataDir)
                    {
                        return true;
                    }
                }
                catch (IOException)
                {
                }
                catch (UnauthorizedAccessException)
                {
                }
            }

            await Task.Delay(5);
        }

        return false;
    }

    private static int ServerProcessesIn(string dataDir) =>
        Directory.EnumerateDirectories("/proc").Count(d =>
        {
            try
            {
                return Path.GetFileName(d).All(char.IsAsciiDigit) && new FileInfo(Path.Combine(d, "cwd")).LinkTarget == dataDir;
            }
            catch (IOException)
            {
                return false;
            }
            catch (UnauthorizedAccessException)
            {
                return false;
            }
        });

    private static void KillPostmaster(string dataDir)
    {
        var pid = int.Parse(File.ReadLines(Path.Combine(dataDir, "postmaster.pid")).First(), System.Globalization.CultureInfo.InvariantCulture);
        System.Diagnostics.Process.GetProcessById(pid).Kill();
    }
}
