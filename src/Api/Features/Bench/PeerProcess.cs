using System.Diagnostics;
using System.Text.Json;

namespace Audit.Api.Features.Bench;

/// <summary>
/// What bench/Audit.Bench.Peers printed: each store's time as a ratio to raw PostgreSQL on the same rows, and
/// Marten's time over ours (above 1 ours is faster; for bytes, smaller).
/// </summary>
public sealed record PeerReport(long Events, string Baseline, IReadOnlyList<PeerRow> Rows);

public sealed record PeerRow(string Figure, double Marten, double Ours, double OursVsMarten, string How);

/// <summary>
/// Runs Marten beside our store in a process of its own (ADR 0010: the host never references Marten):
/// builds bench/Audit.Bench.Peers from the repository, points it at the bench schema, reads its JSON.
/// </summary>
public static class PeerProcess
{
    private const string Project = "bench/Audit.Bench.Peers/Audit.Bench.Peers.csproj";

    /// <param name="connectionString">The suite's connection, its search path on the bench schema holding <paramref name="run"/>.</param>
    public static async Task<PeerReport> RunAsync(string connectionString, string run, string schema, Action<string> log, CancellationToken ct)
    {
        var root = BenchCommand.RepoRoot() ?? throw new InvalidOperationException("--peers needs the repository (it builds bench/Audit.Bench.Peers); run ./audit from a clone");
        var output = Path.Combine(root, ".build", "peers");
        log("peers: building bench/Audit.Bench.Peers (Marten 9.62)");
        var (built, _, buildErr) = await RunAsync(["build", Path.Combine(root, Project), "-c", "Release", "-o", output, "-nologo", "-v", "q"], null, log: null, ct);
        if (built != 0)
        {
            throw new InvalidOperationException("building the peers bench failed:\n" + buildErr);
        }

        var (code, json, _) = await RunAsync(
            [Path.Combine(output, "Audit.Bench.Peers.dll"), "--run", run, "--schema", schema],
            new Dictionary<string, string> { ["AUDIT_PEER_DB"] = connectionString },
            log,
            ct);
        if (code != 0)
        {
            throw new InvalidOperationException($"the peers bench exited {code}");
        }

        return Read(json);
    }

    /// <summary>The report from the JSON the peers process printed.</summary>
    internal static PeerReport Read(string json) =>
        JsonSerializer.Deserialize<PeerReport>(json, new JsonSerializerOptions(JsonSerializerDefaults.Web) { UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow })
            ?? throw new InvalidOperationException("the peers bench printed no report");

    /// <summary>Runs dotnet with the arguments; stderr lines go to <paramref name="log"/> as they come when given one.</summary>
    private static async Task<(int Code, string Out, string Err)> RunAsync(IEnumerable<string> args, IReadOnlyDictionary<string, string>? env, Action<string>? log, CancellationToken ct)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            start.Environment[k] = v;
        }

        using var p = Process.Start(start) ?? throw new InvalidOperationException("could not start dotnet");
        var err = new System.Text.StringBuilder();
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            lock (err)
            {
                err.AppendLine(e.Data);
            }

            log?.Invoke(e.Data);
        };
        p.BeginErrorReadLine();
        var stdout = await p.StandardOutput.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct);
        return (p.ExitCode, stdout, err.ToString() + stdout);
    }
}
