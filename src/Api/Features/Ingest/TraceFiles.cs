using System.Security.Cryptography;
using Audit.Projections.Serialization;

namespace Audit.Api.Features.Ingest;

/// <summary>Reading trace files: format detection, content hash, merge of several files by time.</summary>
public static class TraceFiles
{
    public sealed record Read(IReadOnlyList<TraceEvent> Events, byte[] Hash, TraceError? Error);

    public static readonly string[] Formats = ["auto", "ndjson", "strace", "ftrace", "perf", "qemu", "smaps"];

    public static async Task<Read> ReadAsync(string file, string format, CancellationToken ct)
    {
        byte[] bytes;
        try
        {
            bytes = await File.ReadAllBytesAsync(file, ct);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new Read([], [], new TraceError(file, 0, $"cannot read the file: {ex.Message}"));
        }

        var hash = SHA256.HashData(bytes);
        var kind = format == "auto" ? Detect(bytes) : format;
        if (kind != "ndjson")
        {
            return new Read([], hash, new TraceError(file, 1, kind is null
                ? "cannot tell the format: expected NDJSON events (one JSON object per line); pass --format"
                : $"format '{kind}' is not supported by this build yet; convert to NDJSON (see docs) or use --format ndjson"));
        }

        using var stream = new MemoryStream(bytes, writable: false);
        var result = NdjsonTraceReader.Read(file, stream);
        return new Read(result.Events, hash, result.Error);
    }

    /// <summary>The first line that is not blank or a comment decides: '{' is NDJSON.</summary>
    public static string? Detect(ReadOnlySpan<byte> bytes)
    {
        foreach (var range in bytes.Split((byte)'\n'))
        {
            var line = bytes[range].Trim(" \t\r"u8);
            if (line.IsEmpty || line[0] == (byte)'#')
            {
                continue;
            }

            return line[0] == (byte)'{' ? "ndjson" : null;
        }

        return "ndjson";
    }

    public static string DefaultRunId(string file)
    {
        var name = Path.GetFileName(file);
        var dot = name.IndexOf('.', StringComparison.Ordinal);
        return dot > 0 ? name[..dot] : name;
    }

    /// <summary>
    /// Merges per-file event lists by time, stably: ties keep file order, and an event without a
    /// time stays right after the event before it in its own file.
    /// </summary>
    public static IReadOnlyList<TraceEvent> MergeByTime(IReadOnlyList<IReadOnlyList<TraceEvent>> files)
    {
        if (files.Count == 1)
        {
            return files[0];
        }

        var pos = new int[files.Count];
        var lastTs = new long[files.Count];
        var merged = new List<TraceEvent>(files.Sum(f => f.Count));
        while (true)
        {
            var best = -1;
            long bestTs = 0;
            for (var i = 0; i < files.Count; i++)
            {
                if (pos[i] >= files[i].Count)
                {
                    continue;
                }

                var ts = files[i][pos[i]].TsNs ?? lastTs[i];
                if (best < 0 || ts < bestTs)
                {
                    best = i;
                    bestTs = ts;
                }
            }

            if (best < 0)
            {
                return merged;
            }

            lastTs[best] = bestTs;
            merged.Add(files[best][pos[best]++]);
        }
    }
}
