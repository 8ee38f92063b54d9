namespace Audit.Api.Features.Ingest;

/// <summary>
/// A capture folder given to ingest: every file in it that a format recognises is one file of one run (named
/// after the folder); the others are skipped with the reason. Text files no format reads are still searched
/// for uname lines (capture metadata). Sub-folders are not searched.
/// </summary>
public static partial class CaptureFolder
{
    [System.Text.RegularExpressions.GeneratedRegex(@"^\s*\d+\.\d+(?:\.\d+)?(?:[-+][\w.+~-]*)?\s*$")]
    private static partial System.Text.RegularExpressions.Regex BareRelease();

    /// <summary>One file given or found, with the run it belongs to (the folder's name for a folder's files).</summary>
    public sealed record Entry(string File, string? Run, string? Folder);

    /// <param name="Skipped">by folder: each file left out, with why.</param>
    /// <param name="Metadata">by folder: what its non-trace files say about the host.</param>
    public sealed record Expanded(IReadOnlyList<Entry> Files, IReadOnlyDictionary<string, List<string>> Skipped, IReadOnlyDictionary<string, Import.HostClues> Metadata);

    /// <summary>How much of a file decides whether it is text and which format it is.</summary>
    private const int Sniff = 64 * 1024;

    public static Expanded Expand(IReadOnlyList<string> given, string format)
    {
        var files = new List<Entry>();
        var skipped = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, Import.HostClues>(StringComparer.Ordinal);
        foreach (var path in given)
        {
            if (!Directory.Exists(path))
            {
                files.Add(new Entry(path, null, null));
                continue;
            }

            var run = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(path)));
            var skips = skipped[path] = [];
            var clues = metadata[path] = new Import.HostClues();
            foreach (var sub in Directory.GetDirectories(path).Order(StringComparer.Ordinal))
            {
                skips.Add($"{Path.GetFileName(sub)}/: a folder (sub-folders are not searched)");
            }

            foreach (var file in Directory.GetFiles(path).Order(StringComparer.Ordinal))
            {
                if (Classify(file, format, clues) is { } reason)
                {
                    skips.Add($"{Path.GetFileName(file)}: {reason}");
                }
                else
                {
                    files.Add(new Entry(file, run, path));
                }
            }
        }

        return new Expanded(files, skipped, metadata);
    }

    /// <summary>Null when the file is a trace to read, else why it is skipped.</summary>
    private static string? Classify(string file, string format, Import.HostClues clues)
    {
        byte[] head;
        try
        {
            using var stream = File.OpenRead(file);
            head = new byte[Math.Min(Sniff, stream.Length)];
            stream.ReadExactly(head);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return "cannot be read: " + ex.Message;
        }

        if (head.Length == 0)
        {
            return "empty";
        }

        if (head.AsSpan().Contains((byte)0))
        {
            return "binary (a trace.dat or perf.data? convert it with `trace-cmd report` or `perf script` first)";
        }

        if (format != "auto" || TraceFiles.Detect(head) is not null)
        {
            return null;
        }

        var where = Path.GetFileName(file);
        var lineNo = 0;
        var named = false;
        foreach (var line in System.Text.Encoding.UTF8.GetString(head).Split('\n'))
        {
            lineNo++;
            var text = line.TrimEnd('\r');
            named |= clues.TryUname(text, $"{where}:{lineNo}");

            // `uname -r > uname.txt` leaves the bare release in a file named for it.
            if (!named && (where.Contains("uname", StringComparison.OrdinalIgnoreCase) || where.Contains("release", StringComparison.OrdinalIgnoreCase))
                && BareRelease().IsMatch(text))
            {
                clues.SawKernel(text.Trim(), $"{where}:{lineNo}");
                named = true;
            }
        }

        return named ? "not a trace (read for the kernel release it names)" : "not a trace format this tool reads";
    }

    /// <summary>
    /// Kernel traces of a folder that recorded another run of the VMM (none of their pids is one of the run's:
    /// strace's, else the largest kernel trace's) are left out; a payload source (bpftrace) may come from
    /// another run by design and stays.
    /// </summary>
    public static Dictionary<int, string> OtherRuns(IReadOnlyList<(string File, Import.ImportResult? Import)> reads)
    {
        var drop = new Dictionary<int, string>();
        var main = reads.FirstOrDefault(r => r.Import?.Format == "strace" && r.Import.Pids.Count > 0).Import
            ?? reads.Where(r => r.Import?.Format is "ftrace" or "perf").OrderByDescending(r => r.Import!.Events.Count).FirstOrDefault().Import;
        if (main is null)
        {
            return drop;
        }

        for (var i = 0; i < reads.Count; i++)
        {
            if (reads[i].Import is { Format: "ftrace" or "perf", Pids.Count: > 0 } other && !ReferenceEquals(other, main) && !other.Pids.Overlaps(main.Pids))
            {
                drop[i] = $"another recording: none of its pids ({string.Join(", ", other.Pids.Order().Take(5))}) is one of {Path.GetFileName(main.File)}'s ({string.Join(", ", main.Pids.Order().Take(5))})";
            }
        }

        return drop;
    }

    /// <summary>
    /// Files of a folder that are renderings of one kernel buffer (trace, options/fields, perf script of the
    /// same recording) would count every event twice: of those whose event times mostly coincide, the one
    /// with the most events stays. Returns the indexes to drop, each with the reason.
    /// </summary>
    public static Dictionary<int, string> SameBuffer(IReadOnlyList<(string File, Import.ImportResult? Import)> reads)
    {
        var drop = new Dictionary<int, string>();
        var kernel = reads.Select((r, i) => (r, i)).Where(x => x.r.Import?.Format is "ftrace" or "perf")
            .OrderByDescending(x => x.r.Import!.Events.Count).ThenBy(x => x.i).ToList();
        for (var a = 0; a < kernel.Count; a++)
        {
            if (drop.ContainsKey(kernel[a].i))
            {
                continue;
            }

            var times = kernel[a].r.Import!.Events.Select(e => e.TsNs / 1000).ToHashSet();
            for (var b = a + 1; b < kernel.Count; b++)
            {
                var other = kernel[b].r.Import!.Events;
                var shared = other.Count(e => times.Contains(e.TsNs / 1000));
                if (other.Count > 0 && shared * 2 > other.Count)
                {
                    drop[kernel[b].i] = $"the same kernel events as {Path.GetFileName(kernel[a].r.File)} ({shared} of its {other.Count} event times match: another rendering of one trace buffer)";
                }
            }
        }

        return drop;
    }
}
