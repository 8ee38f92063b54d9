using System.Globalization;
using Audit.Api.Http;
using Audit.Projections.Integrity;
using Audit.Projections.Storage;
using Npgsql;

namespace Audit.Api.Features.Fuzz;

/// <summary>
/// `audit bench --fuzz N`: the import fuzz of the test suite at scale, against the real HTTP server on
/// a loopback port and a schema of its own (dropped afterwards), then the store checks over every run
/// it kept.
/// </summary>
public static class FuzzBench
{
    public sealed record Result(FuzzReport Report, int RunsChecked, IReadOnlyList<Problem> StoreProblems, double Seconds);

    public static async Task<Result> RunAsync(string connectionString, int count, int seed, Action<string> log, CancellationToken ct)
    {
        var schema = "bench_fuzz_" + DateTime.UtcNow.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
        await Baselines.CreateSchemaAsync(connectionString, schema, ct);
        try
        {
            await using var ds = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(connectionString) { SearchPath = schema }.ConnectionString);
            await Migrator.MigrateAsync(ds, ct);
            await using var app = HttpApp.Build([], ds, "http://127.0.0.1:0", new HttpOptions(null, 16L << 20));
            await app.StartAsync(ct);
            using var client = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromMinutes(5) };
            var started = System.Diagnostics.Stopwatch.StartNew();
            var report = new FuzzReport(0, 0, 0, 0, 0, 0, 0, []);
            const int chunk = 500;
            for (var done = 0; done < count; done += chunk)
            {
                var part = await ImportFuzz.RunAsync(client, Traces(), Math.Min(chunk, count - done), seed + done, "fz", ct);
                report = Add(report, part);
                log($"  fuzz: {done + part.Imports:N0} of {count:N0} imports, {report.ServerErrors} server errors, {report.PartialRuns} partial runs");
            }

            var integrity = new StoreIntegrity(ds);
            var problems = new List<Problem>();
            var runs = await integrity.RunIdsAsync(ct);
            foreach (var run in runs)
            {
                problems.AddRange(await integrity.CheckAsync(run, ct));
            }

            await app.StopAsync(ct);
            return new Result(report, runs.Count, problems, started.Elapsed.TotalSeconds);
        }
        finally
        {
            await Baselines.DropSchemaAsync(connectionString, schema, CancellationToken.None);
        }
    }

    private static FuzzReport Add(FuzzReport a, FuzzReport b) => new(
        a.Imports + b.Imports, a.Stored + b.Stored, a.Refused + b.Refused, a.ServerErrors + b.ServerErrors,
        a.RefusedWithoutLine + b.RefusedWithoutLine, a.OtherStatus + b.OtherStatus, a.PartialRuns + b.PartialRuns,
        [.. a.Failures, .. b.Failures.Take(Math.Max(0, 10 - a.Failures.Count))]);

    /// <summary>The traces the host ships (the demo's samples and the real PVM capture).</summary>
    private static IReadOnlyList<string> Traces()
    {
        var assembly = typeof(FuzzBench).Assembly;
        return assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith("samples/", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(n =>
            {
                using var s = assembly.GetManifestResourceStream(n)!;
                using var r = new StreamReader(s);
                return r.ReadToEnd();
            })
            .ToList();
    }
}
