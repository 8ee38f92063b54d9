using System.Security.Cryptography;
using Audit.Projections.Serialization;

namespace Audit.Api.Features.Ingest;

/// <summary>Reading trace files: format detection, content hash, merge of several files by time.</summary>
public static class TraceFiles
{
    public sealed record Read(IReadOnlyList<TraceEvent> Events, byte[] Hash, TraceError? Error, Import.ImportResult? Import = null);

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
        using var stream = new MemoryStream(bytes, writable: false);
        using var text = new StreamReader(stream);
        switch (kind)
        {
            case "ndjson":
                var result = NdjsonTraceReader.Read(file, text);
                return new Read(result.Events, hash, result.Error);
            case "strace" or "ftrace":
                var import = kind == "strace" ? Import.StraceImporter.Read(file, text) : Import.FtraceImporter.Read(file, text);
                return new Read(import.Events.Select(e => new TraceEvent(e.Line, e.TsNs, e.Event, [])).ToList(), hash, import.Error, import);
            default:
                return new Read([], hash, new TraceError(file, 1, kind is null
                    ? "cannot tell the format: expected NDJSON events, strace (-f -tt) or tracefs text; pass --format"
                    : $"format '{kind}' is not supported by this build yet; use ndjson, strace or ftrace"));
        }
    }

    /// <summary>The first line that is not blank decides: '{' is NDJSON, then strace, then tracefs text.</summary>
    public static string? Detect(ReadOnlySpan<byte> bytes)
    {
        foreach (var range in bytes.Split((byte)'\n'))
        {
            var raw = bytes[range];
            var line = System.Text.Encoding.UTF8.GetString(raw).TrimEnd('\r');
            if (line.Trim().Length == 0)
            {
                continue;
            }

            if (line.StartsWith("# tracer:", StringComparison.Ordinal) || Import.FtraceImporter.Looks(line))
            {
                return "ftrace";
            }

            if (line.TrimStart().StartsWith('#'))
            {
                continue;
            }

            if (line.TrimStart().StartsWith('{'))
            {
                return "ndjson";
            }

            return Import.StraceImporter.Looks(line) ? "strace" : null;
        }

        return "ndjson";
    }

    /// <summary>
    /// Puts the strace files of a run on the tracefs clock: the same mmap results appear in both, so
    /// the offset is the median difference of their times. Without a tracefs file, times stay as read.
    /// </summary>
    public static string? AlignClocks(IReadOnlyList<Read> files)
    {
        var reference = files.Select(f => f.Import).FirstOrDefault(i => i?.Format == "ftrace");
        if (reference is null)
        {
            return null;
        }

        var anchors = reference.ClockMatches.GroupBy(m => m.Key).ToDictionary(g => g.Key, g => g.First().TsNs, StringComparer.Ordinal);
        foreach (var f in files.Where(f => f.Import?.Format == "strace"))
        {
            var deltas = f.Import!.Events.Where(e => e.SyscallKey is not null && anchors.ContainsKey(e.SyscallKey))
                .Select(e => anchors[e.SyscallKey!] - e.TsNs!.Value).Order().ToList();
            if (deltas.Count == 0)
            {
                return $"cannot put {f.Import.File} on the clock of {reference.File}: no mmap result appears in both";
            }

            var offset = deltas[deltas.Count / 2];
            var events = (List<TraceEvent>)f.Events;
            for (var i = 0; i < events.Count; i++)
            {
                events[i] = events[i] with { TsNs = events[i].TsNs + offset };
            }
        }

        return null;
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
