using System.Security.Cryptography;
using System.Text;
using Audit.Projections.Serialization;
using Audit.Projections.Storage;
using MediatR;

namespace Audit.Api.Features.Ingest;

/// <summary>Store the events of trace files; files of one run are merged by timestamp.</summary>
/// <param name="ClockOffsetsNs">per file (its path or name): ns added to its times before merging; such a file is not aligned automatically.</param>
/// <param name="Progress">told (file, bytes read, bytes) while a large file is read.</param>
public sealed record IngestFiles(
    IReadOnlyList<string> Files,
    string? Run = null,
    string Format = "auto",
    string? Policy = null,
    IReadOnlyDictionary<string, long>? ClockOffsetsNs = null,
    Action<string, long, long>? Progress = null) : IRequest<IngestResult>;

/// <param name="Host">how the host was inferred, when the files described none and no policy was named.</param>
/// <param name="Skipped">files of a capture folder left out, each "FILE: why".</param>
public sealed record IngestedRun(string Run, IReadOnlyList<string> Files, int Inputs, int Stored, long FirstSeq, long LastSeq, bool Duplicate, string? Policy, IReadOnlyList<FileAccount> Accounts, string? Note = null, string? Host = null, IReadOnlyList<string>? Skipped = null);

/// <summary>How every line of one file was used: turned into events, or counted by kind.</summary>
/// <param name="Notes">how the file was read where that matters (fewer facts than its richer form, lines reordered).</param>
public sealed record FileAccount(string File, string Format, int Lines, int Events, IReadOnlyDictionary<string, int> Counted, IReadOnlyList<string>? Notes = null);

/// <summary>Either the runs written, or the first bad line (then nothing was stored).</summary>
public sealed record IngestResult(IReadOnlyList<IngestedRun> Runs, TraceError? Error);

public sealed class IngestFilesHandler(RunWriter writer) : IRequestHandler<IngestFiles, IngestResult>
{
    public async Task<IngestResult> Handle(IngestFiles request, CancellationToken cancellationToken)
    {
        var expanded = CaptureFolder.Expand(request.Files, request.Format);
        var parsed = new List<(string Run, string File, byte[] Hash, TraceFiles.Read Read, string? Folder)>();
        foreach (var entry in expanded.Files)
        {
            var read = await TraceFiles.ReadAsync(entry.File, request.Format, cancellationToken, request.Progress);
            if (read.Error is not null)
            {
                return new IngestResult([], read.Error);
            }

            parsed.Add((request.Run ?? entry.Run ?? TraceFiles.DefaultRunId(entry.File), entry.File, read.Hash, read, entry.Folder));
        }

        if (expanded.Skipped.FirstOrDefault(s => parsed.All(p => p.Folder != s.Key)) is { Key: { } empty, Value: var skips })
        {
            return new IngestResult([], new TraceError(empty, 0, $"no file in the folder is a trace this tool reads: {string.Join("; ", skips)}"));
        }

        var results = new List<IngestedRun>();
        foreach (var group in parsed.GroupBy(p => p.Run, StringComparer.Ordinal))
        {
            var folders = group.Select(f => f.Folder).OfType<string>().Distinct(StringComparer.Ordinal).ToList();
            var skipped = folders.SelectMany(f => expanded.Skipped[f]).ToList();
            var inFolder = group.Select(f => (f.File, f.Folder is null ? null : f.Read.Import)).ToList();
            var left = CaptureFolder.OtherRuns(inFolder);
            foreach (var (i, why) in CaptureFolder.SameBuffer(inFolder.Select((f, i) => left.ContainsKey(i) ? (f.File, null) : f).ToList()))
            {
                left[i] = why;
            }

            skipped.AddRange(left.OrderBy(d => d.Key).Select(d => $"{Path.GetFileName(inFolder[d.Key].File)}: {d.Value}"));
            var files = group.Where((_, i) => !left.ContainsKey(i)).ToList();
            var (combined, note) = TraceFiles.Combine(files.Select(f => f.Read).ToList());
            var reads = combined.ToList();
            var given = new HashSet<TraceFiles.Read>();
            for (var i = 0; i < reads.Count; i++)
            {
                if (Offset(request.ClockOffsetsNs, files[i].File) is { } offset)
                {
                    reads[i] = TraceFiles.Shift(reads[i], offset);
                    given.Add(reads[i]);
                }
                else if (reads[i].Import is { Undated: true })
                {
                    // A snapshot without a time of its own was taken when the file was written.
                    reads[i] = TraceFiles.Shift(reads[i], new DateTimeOffset(File.GetLastWriteTimeUtc(files[i].File)).ToUnixTimeMilliseconds() * 1_000_000);
                }
            }

            if (TraceFiles.AlignClocks(reads, given) is { } clockError)
            {
                return new IngestResult(results, new TraceError(files[0].File, 1, clockError));
            }

            var merged = TraceFiles.MergeByTime(reads.Select(r => r.Events).ToList());
            var accounts = files.Zip(reads).Select(f => f.Second.Import is { } i
                ? new FileAccount(f.First.File, i.Format, i.Lines, i.Events.Count, i.Counted, i.Notes)
                : new FileAccount(f.First.File, "ndjson", 0, f.Second.Events.Count, new Dictionary<string, int>())).ToList();

            // Batch key: the content of every file plus the run id, so a repeated ingest stores nothing.
            var key = BatchKey(group.Key, files.Select(f => f.Hash), request.ClockOffsetsNs);
            var clues = new Import.HostClues();
            foreach (var r in reads)
            {
                clues.Add(r.Import?.Host ?? new Import.HostClues());
            }

            foreach (var f in folders)
            {
                clues.Add(expanded.Metadata[f]);
            }

            var host = clues.Infer(out var hostSummary);
            var written = await writer.AppendAsync(group.Key, merged, key, null, request.Policy, cancellationToken, host);
            if (written.Error is not null)
            {
                return new IngestResult(results, new TraceError(files[0].File, 1, written.Error));
            }

            var result = written.Result!;
            results.Add(new IngestedRun(
                group.Key, files.Select(f => f.File).ToList(), result.InputCount, result.EventCount, result.FirstSeq, result.LastSeq,
                result.Status == AppendStatus.Duplicate, written.Policy, accounts, note, written.InferredHost is null ? null : hostSummary, skipped));
        }

        return new IngestResult(results, null);
    }

    private static long? Offset(IReadOnlyDictionary<string, long>? offsets, string file) =>
        offsets is null ? null
        : offsets.TryGetValue(file, out var o) || offsets.TryGetValue(Path.GetFileName(file), out o) || offsets.TryGetValue(Path.GetFullPath(file), out o) ? o : null;

    internal static string BatchKey(string run, IEnumerable<byte[]> hashes, IReadOnlyDictionary<string, long>? offsets = null)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes(run));
        foreach (var h in hashes)
        {
            sha.AppendData(h);
        }

        // Other offsets are another merge of the same files.
        foreach (var (file, ns) in (offsets ?? new Dictionary<string, long>()).OrderBy(o => o.Key, StringComparer.Ordinal))
        {
            sha.AppendData(Encoding.UTF8.GetBytes($"{file}={ns};"));
        }

        return "sha256:" + Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}
