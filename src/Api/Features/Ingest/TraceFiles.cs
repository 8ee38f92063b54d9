using System.Security.Cryptography;
using Audit.Projections.Serialization;

namespace Audit.Api.Features.Ingest;

/// <summary>Reading trace files: format detection, content hash, merge of several files by time.</summary>
public static class TraceFiles
{
    public sealed record Read(IReadOnlyList<TraceEvent> Events, byte[] Hash, TraceError? Error, Import.ImportResult? Import = null);

    public static readonly string[] Formats = ["auto", "ndjson", "strace", "ftrace", "perf", "qemu", "smaps", "bpftrace", "stage2"];

    /// <summary>Files at least this large report their reading progress.</summary>
    public const long ProgressFrom = 8 << 20;

    public static async Task<Read> ReadAsync(string file, string format, CancellationToken ct, Action<string, long, long>? progress = null)
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
        using var stream = bytes.Length >= ProgressFrom && progress is not null
            ? new ProgressStream(bytes, (done, total) => progress(file, done, total))
            : new MemoryStream(bytes, writable: false);
        using var text = new StreamReader(stream);
        if (kind == "ndjson")
        {
            var result = NdjsonTraceReader.Read(file, text);
            return new Read(result.Events, hash, result.Error);
        }

        if (Importers.FirstOrDefault(i => i.Name == kind) is { Read: { } read })
        {
            return Of(read(file, text), hash);
        }

        return new Read([], hash, new TraceError(file, 1, kind is null
            ? "cannot tell the format: expected NDJSON events, strace (-f -tt), tracefs text, trace-cmd report, perf script, a bpftrace ioctl log, QEMU trace events, /proc/PID/smaps or maps, or an arm64 stage2_page_tables dump; pass --format"
            : $"format '{kind}' is not supported; use one of {string.Join(", ", Formats[1..])}"));
    }

    /// <summary>The events of an import as trace events (after a payload fill, again).</summary>
    public static Read Of(Import.ImportResult import, byte[] hash) =>
        new(import.Events.Select(e => new TraceEvent(e.Line, e.TsNs, e.Event, [])).ToList(), hash, import.Error, import);

    /// <summary>The foreign formats, in the order auto-detection tries them on the first line that tells.</summary>
    private static readonly (string Name, Func<string, bool> Looks, Func<string, TextReader, Import.ImportResult> Read)[] Importers =
    [
        ("ftrace", Import.FtraceImporter.Looks, Import.FtraceImporter.Read),
        ("perf", Import.PerfImporter.Looks, Import.PerfImporter.Read),
        ("bpftrace", Import.BpftraceImporter.Looks, Import.BpftraceImporter.Read),
        ("smaps", Import.SmapsImporter.Looks, Import.SmapsImporter.Read),
        ("qemu", Import.QemuImporter.Looks, Import.QemuImporter.Read),
        ("stage2", Import.Stage2DumpImporter.Looks, Import.Stage2DumpImporter.Read),
        ("strace", Import.StraceImporter.Looks, Import.StraceImporter.Read),
    ];

    /// <summary>The first line that is not blank (or a '#' comment) decides: '{' is NDJSON, else the first importer that recognises it.</summary>
    public static string? Detect(ReadOnlySpan<byte> bytes)
    {
        var seen = 0;
        foreach (var range in bytes.Split((byte)'\n'))
        {
            var line = System.Text.Encoding.UTF8.GetString(bytes[range]).TrimEnd('\r');
            if (line.Trim().Length == 0)
            {
                continue;
            }

            if (line.StartsWith("# tracer:", StringComparison.Ordinal))
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

            if (Importers.FirstOrDefault(i => i.Looks(line)) is { Name: { } name })
            {
                return name;
            }

            // A preamble line (a tool's banner) may precede the first one that tells.
            if (++seen >= 5)
            {
                return null;
            }
        }

        return seen == 0 ? "ndjson" : null;
    }

    /// <summary>
    /// Files of one run that complete each other: a payload source (bpftrace) fills in the ioctls the
    /// strace file of the run could not decode. Returns the reads to merge, with what was filled.
    /// </summary>
    public static (IReadOnlyList<Read> Reads, string? Note) Combine(IReadOnlyList<Read> files)
    {
        var strace = files.FirstOrDefault(f => f.Import?.Format == "strace");
        var sources = files.Where(f => f.Import?.Format is "bpftrace" or "smaps" or "maps").ToList();
        if (strace is null || sources.Count == 0)
        {
            return (files, null);
        }

        var notes = new List<string>();
        var filled = new Dictionary<Read, Read>();
        var target = strace.Import!;
        foreach (var source in sources)
        {
            var name = Path.GetFileName(source.Import!.File);
            if (source.Import.Format == "bpftrace")
            {
                var o = Import.PayloadFill.Fill(target, source.Import);
                notes.Add($"{name} filled {o.Filled} undecoded ioctls of {Path.GetFileName(target.File)}"
                    + (o.Translated > 0 ? $" ({o.Translated} host addresses translated from another run of the VMM)" : "")
                    + (o.Unpaired > 0 ? $"; {o.Unpaired} calls had no partner" : ""));
            }
            else
            {
                notes.Add(source.Import.Format == "maps"
                    ? $"{name} completed {Import.SmapsImporter.Enrich(target, source.Import)} mmaps of {Path.GetFileName(target.File)} (backing only: a maps file has no VmFlags or page size)"
                    : $"{name} completed {Import.SmapsImporter.Enrich(target, source.Import)} mmaps of {Path.GetFileName(target.File)} (VmFlags, backing, page size)");
            }

            filled[source] = Of(source.Import, source.Hash);
        }

        filled[strace] = Of(target, strace.Hash);
        return (files.Select(f => filled.GetValueOrDefault(f, f)).ToList(), string.Join("; ", notes));
    }

    /// <summary>Shifts a file's times by an offset the user gave (its clock is then taken as aligned).</summary>
    public static Read Shift(Read read, long offsetNs)
    {
        var events = read.Events.Select(e => e with { TsNs = e.TsNs + offsetNs }).ToList();
        if (read.Import is { } import)
        {
            // Its anchors move with it, should another file be aligned on this one.
            for (var i = 0; i < import.ClockMatches.Count; i++)
            {
                import.ClockMatches[i] = (import.ClockMatches[i].Key, import.ClockMatches[i].TsNs + offsetNs);
            }
        }

        return read with { Events = events };
    }

    /// <summary>A read-only stream over the bytes that reports how far it has been read, at most every 1%.</summary>
    private sealed class ProgressStream(byte[] bytes, Action<long, long> report) : MemoryStream(bytes, writable: false)
    {
        private long next;

        public override int Read(byte[] buffer, int offset, int count) => Report(base.Read(buffer, offset, count));

        public override int Read(Span<byte> buffer) => Report(base.Read(buffer));

        private int Report(int n)
        {
            if (Position >= next || n == 0)
            {
                report(Position, Length);
                next = Position + Math.Max(1, Length / 100);
            }

            return n;
        }
    }

    /// <summary>
    /// Puts the strace files of a run on the tracefs clock: the same mmap results appear in both, so
    /// the offset is the median difference of their times. Without a tracefs file, times stay as read.
    /// </summary>
    public static string? AlignClocks(IReadOnlyList<Read> files, IReadOnlySet<Read>? given = null)
    {
        // The kernel trace that recorded the mmap syscalls (a perf script of kvm events alone has none).
        var reference = files.Select(f => f.Import).Where(i => i?.Format is "ftrace" or "perf")
            .OrderByDescending(i => i!.ClockMatches.Count(m => m.Key.StartsWith("mmap:", StringComparison.Ordinal))).FirstOrDefault();
        if (reference is null)
        {
            return null;
        }

        var anchors = reference.ClockMatches.GroupBy(m => m.Key).ToDictionary(g => g.Key, g => g.First().TsNs, StringComparer.Ordinal);
        foreach (var f in files.Where(f => f.Import?.Format == "strace" && given?.Contains(f) != true))
        {
            var deltas = f.Import!.Events.Where(e => e.SyscallKey is not null && e.TsNs is not null && anchors.ContainsKey(e.SyscallKey))
                .Select(e => anchors[e.SyscallKey!] - e.TsNs!.Value).Order().ToList();
            if (deltas.Count == 0)
            {
                return f.Import.Events.All(e => e.TsNs is null)
                    ? $"cannot put {f.Import.File} on the clock of {reference.File}: it has no timestamps (record strace with -tt or -ttt), or give --clock-offset"
                    : $"cannot put {f.Import.File} on the clock of {reference.File}: no mmap result appears in both";
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
