using System.Security.Cryptography;
using System.Text;
using Audit.Projections.Serialization;
using Audit.Projections.Storage;
using MediatR;

namespace Audit.Api.Features.Ingest;

/// <summary>Store the events of trace files; files of one run are merged by timestamp.</summary>
public sealed record IngestFiles(IReadOnlyList<string> Files, string? Run = null, string Format = "auto") : IRequest<IngestResult>;

public sealed record IngestedRun(string Run, IReadOnlyList<string> Files, int Inputs, int Stored, long FirstSeq, long LastSeq, bool Duplicate);

/// <summary>Either the runs written, or the first bad line (then nothing was stored).</summary>
public sealed record IngestResult(IReadOnlyList<IngestedRun> Runs, TraceError? Error);

public sealed class IngestFilesHandler(EventStore store) : IRequestHandler<IngestFiles, IngestResult>
{
    public async Task<IngestResult> Handle(IngestFiles request, CancellationToken cancellationToken)
    {
        var parsed = new List<(string Run, string File, byte[] Hash, IReadOnlyList<TraceEvent> Events)>();
        foreach (var file in request.Files)
        {
            var read = await TraceFiles.ReadAsync(file, request.Format, cancellationToken);
            if (read.Error is not null)
            {
                return new IngestResult([], read.Error);
            }

            parsed.Add((request.Run ?? TraceFiles.DefaultRunId(file), file, read.Hash, read.Events));
        }

        var results = new List<IngestedRun>();
        foreach (var group in parsed.GroupBy(p => p.Run, StringComparer.Ordinal))
        {
            var files = group.ToList();
            var merged = TraceFiles.MergeByTime(files.Select(f => f.Events).ToList());

            // Batch key: the content of every file plus the run id, so a repeated ingest stores nothing.
            var key = BatchKey(group.Key, files.Select(f => f.Hash));
            var result = await store.AppendAsync(
                group.Key,
                merged.Select(e => new NewEvent(e.Event, e.TsNs, e.Extras)).ToList(),
                batchKey: key,
                info: RunInfoOf(merged),
                ct: cancellationToken);
            results.Add(new IngestedRun(
                group.Key, files.Select(f => f.File).ToList(), result.InputCount, result.EventCount, result.FirstSeq, result.LastSeq,
                result.Status == AppendStatus.Duplicate));
        }

        return new IngestResult(results, null);
    }

    internal static string BatchKey(string run, IEnumerable<byte[]> hashes)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes(run));
        foreach (var h in hashes)
        {
            sha.AppendData(h);
        }

        return "sha256:" + Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    internal static RunInfo? RunInfoOf(IEnumerable<TraceEvent> events)
    {
        var host = events.Select(e => e.Event).OfType<Domain.Events.HostDescribed>().FirstOrDefault();
        return host is null ? null : new RunInfo($"{KernelNamesView.Arch(host.Arch)} {host.Kernel}{(host.Vendor is { } v ? " " + v.ToString().ToLowerInvariant() : "")}", null);
    }
}

internal static class KernelNamesView
{
    public static string Arch(Domain.Events.Arch a) => a == Domain.Events.Arch.Arm64 ? "arm64" : "x86_64";
}
