using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Audit.Api.Features.Fuzz;

/// <summary>What the fuzz saw: every answer by kind, and the first few that broke a promise.</summary>
public sealed record FuzzReport(int Imports, int Stored, int Refused, int ServerErrors, int RefusedWithoutLine, int OtherStatus, int PartialRuns, IReadOnlyList<string> Failures)
{
    public bool Clean => ServerErrors == 0 && RefusedWithoutLine == 0 && OtherStatus == 0 && PartialRuns == 0;
}

/// <summary>
/// Mutated real traces through POST /runs/{run}/import: each must be stored (200) or refused (400)
/// with a problem that names the body's line, never a server error; a refused import leaves no run.
/// </summary>
public static partial class ImportFuzz
{
    public static async Task<FuzzReport> RunAsync(HttpClient client, IReadOnlyList<string> traces, int count, int seed, string prefix = "fz", CancellationToken ct = default)
    {
        var rng = new Random(seed);
        int stored = 0, refused = 0, server = 0, noLine = 0, other = 0, partial = 0;
        var failures = new List<string>();
        void Fail(string what)
        {
            if (failures.Count < 10)
            {
                failures.Add(what);
            }
        }

        for (var i = 0; i < count; i++)
        {
            var run = $"{prefix}{seed}-{i}";
            var body = TraceMutator.Mutate(traces[rng.Next(traces.Count)], rng);
            using var content = new StringContent(body, Encoding.UTF8, "text/plain");
            using var response = await client.PostAsync($"/runs/{run}/import?format=auto", content, ct);
            var text = await response.Content.ReadAsStringAsync(ct);
            switch (response.StatusCode)
            {
                case HttpStatusCode.OK:
                    stored++;
                    break;
                case HttpStatusCode.BadRequest:
                    refused++;
                    if (!NamesLine(text))
                    {
                        noLine++;
                        Fail($"{run}: 400 without a line: {text}");
                    }

                    if (await ExistsAsync(client, run, ct))
                    {
                        partial++;
                        Fail($"{run}: refused, but the run exists");
                    }

                    break;
                case >= HttpStatusCode.InternalServerError:
                    server++;
                    Fail($"{run}: {(int)response.StatusCode}: {text}");
                    break;
                default:
                    other++;
                    Fail($"{run}: {(int)response.StatusCode}: {text}");
                    break;
            }
        }

        return new FuzzReport(count, stored, refused, server, noLine, other, partial, failures);
    }

    /// <summary>A problem whose detail starts "body:LINE: " and that carries the line.</summary>
    private static bool NamesLine(string problem)
    {
        try
        {
            using var doc = JsonDocument.Parse(problem);
            var root = doc.RootElement;
            return root.TryGetProperty("line", out var line) && line.ValueKind == JsonValueKind.Number
                && root.TryGetProperty("detail", out var detail) && BodyLine().IsMatch(detail.GetString() ?? "");
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static async Task<bool> ExistsAsync(HttpClient client, string run, CancellationToken ct)
    {
        using var r = await client.GetAsync($"/runs/{run}/state", ct);
        return r.StatusCode != HttpStatusCode.NotFound;
    }

    [GeneratedRegex(@"^body:\d+: ")]
    private static partial Regex BodyLine();
}
