using System.Diagnostics;
using System.Globalization;
using System.Text;
using Audit.Tests.Cli;

namespace Audit.Tests.Drills;

/// <summary>
/// The built host as a real process (`dotnet audit.dll ...`, the dll the test project builds beside
/// itself), for drills that kill it: in-process runs cannot be killed mid-write.
/// </summary>
public sealed class HostProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _out = new();
    private readonly StringBuilder _err = new();

    private HostProcess(Process process)
    {
        _process = process;
    }

    public static string Dll => Path.Combine(AppContext.BaseDirectory, "audit.dll");

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public string Out
    {
        get
        {
            lock (_out)
            {
                return _out.ToString();
            }
        }
    }

    public string Err
    {
        get
        {
            lock (_err)
            {
                return _err.ToString();
            }
        }
    }

    /// <summary>Starts the host with <paramref name="args"/>; <paramref name="env"/> adds or overrides variables (AUDIT_HOME...).</summary>
    public static HostProcess Start(IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["AUDIT_TOKEN"] = null;
        psi.Environment["AUDIT_DB"] = null;
        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        var host = new HostProcess(Process.Start(psi)!);
        host._process.OutputDataReceived += (_, e) => Append(host._out, e.Data);
        host._process.ErrorDataReceived += (_, e) => Append(host._err, e.Data);
        host._process.BeginOutputReadLine();
        host._process.BeginErrorReadLine();
        return host;
    }

    /// <summary>Runs the host to its end (a drill's bound, not a speed limit: a hung host fails the drill instead of hanging the suite).</summary>
    public static async Task<CliResult> RunAsync(IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null)
    {
        using var host = Start(args, env);
        return await host.WaitAsync();
    }

    public async Task<CliResult> WaitAsync()
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await _process.WaitForExitAsync(bound.Token);
        _process.WaitForExit();
        return new CliResult(_process.ExitCode, Out, Err);
    }

    /// <summary>SIGKILL: no handler runs, no transaction is finished.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
        }

        _process.WaitForExit();
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    public static int FreePort()
    {
        using var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        return ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
    }

    /// <summary>The gh200 sample's setup (host, VM, memslots) followed by <paramref name="faults"/> seeded guest faults in its RAM, one microsecond apart.</summary>
    public static List<string> TraceLines(int faults, int seed)
    {
        var setup = File.ReadLines(Path.Combine(Infrastructure.Paths.Samples, "gh200-gpu-passthrough.ndjson"))
            .Where(l => l.StartsWith('{') && !l.Contains("\"GuestFaulted\"", StringComparison.Ordinal) && !l.Contains("Unmapped", StringComparison.Ordinal))
            .Take(6)
            .ToList();
        var rng = new Random(seed);
        var start = new DateTime(2026, 3, 2, 10, 0, 1, DateTimeKind.Utc);
        for (var i = 0; i < faults; i++)
        {
            var ts = start.AddTicks(i * 10L).ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", CultureInfo.InvariantCulture);
            var gpa = 0x40000000UL + ((ulong)rng.Next(0, 0x100000) << 12);
            setup.Add($$"""{"type": "GuestFaulted", "ts": "{{ts}}", "vcpu": {{i % 4}}, "gpa": "0x{{gpa:x}}", "access": "{{(i % 3 == 0 ? "read" : "write")}}", "kind": "translation"}""");
        }

        return setup;
    }

    public static string NoStackTrace(CliResult r) =>
        r.Err.Contains("   at ", StringComparison.Ordinal) || r.Err.Contains("Unhandled exception", StringComparison.Ordinal) ? "a stack trace reached the user:\n" + r.Err : "";

    private static void Append(StringBuilder sb, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (sb)
        {
            sb.AppendLine(line);
        }
    }
}
