using System.Globalization;
using System.Text.RegularExpressions;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Projections.Serialization;

namespace Audit.Api.Import;

/// <summary>
/// The arm64 stage-2 page-table dump KVM puts in debugfs from 6.12 (`/sys/kernel/debug/kvm/PID-FD/stage2_page_tables`,
/// arch/arm64/kvm/ptdump.c, printed by the generic ptdump note_page): a "---[ Guest IPA ]---" marker, then one
/// line per run of identical leaf entries, "0xSTART-0xEND   SIZE LEVEL" and, for a non-empty entry, its
/// attributes: " " valid or "F" invalid, R, W, the XN field ("px ux ", "PXNux ", "PXNUXN", "px UXN"), AF, BLK.
/// <para>
/// Each mapped run becomes a <see cref="Stage2MappingObserved"/> at its first block, and one at its last block
/// when it spans several: permissions and block size (the level's, 4 KiB granule) are compared with the
/// model. The dump prints no memory type (MemAttr) and no IPAT, so those stay unknown and are not compared;
/// empty runs and invalid annotated entries are counted, not compared; the access flag stays in the raw text.
/// </para>
/// The dump carries no time: an optional first line "# time: SECONDS" (on the run's clock) dates it, else
/// ingest dates it by the file's modification time (see <see cref="ImportResult.Undated"/>).
/// </summary>
public static partial class Stage2DumpImporter
{
    [GeneratedRegex(@"^0x(?<start>[0-9a-f]{16})-0x(?<end>[0-9a-f]{16})\s+(?<size>\d+)(?<unit>[KMGTPE])\s+(?<level>\d)(?<attrs>.*)$")]
    private static partial Regex LineRx();

    [GeneratedRegex(@"^#\s*time:\s*(?<s>\d+(?:\.\d+)?)\s*$")]
    private static partial Regex TimeRx();

    public static bool Looks(string line) => line.StartsWith("---[ Guest IPA ]---", StringComparison.Ordinal) || LineRx().IsMatch(line);

    /// <summary>The size one entry maps at each level with a 4 KiB granule (level 3 pages, 2 2M blocks, 1 1G blocks).</summary>
    private static ulong LevelSize(int level) => level switch { 3 => 0x1000UL, 2 => 0x200000UL, 1 => 0x40000000UL, _ => 0x8000000000UL };

    public static ImportResult Read(string file, TextReader reader)
    {
        var result = new ImportResult(file, "stage2");
        result.Undated = true;
        result.Host.SawArch(Arch.Arm64, $"an arm64 stage2_page_tables dump ({Path.GetFileName(file)})");
        long ts = 0;
        var lineNo = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNo++;
            result.Lines++;
            if (TimeRx().Match(line) is { Success: true } t)
            {
                ts = (long)(decimal.Parse(t.Groups["s"].Value, CultureInfo.InvariantCulture) * 1_000_000_000m);
                result.Undated = false;
                result.Count("time of the snapshot");
                continue;
            }

            if (string.IsNullOrWhiteSpace(line) || line.StartsWith("---[", StringComparison.Ordinal) || line.StartsWith('#'))
            {
                result.Count("marker, comment or blank");
                continue;
            }

            if (LineRx().Match(line) is not { Success: true } m)
            {
                result.Error = new TraceError(file, lineNo, "not a stage2_page_tables line (expected '0xSTART-0xEND   SIZE LEVEL [attributes]')");
                return result;
            }

            if (Run(result, lineNo, ts, m) is { } error)
            {
                result.Error = new TraceError(file, lineNo, error);
                return result;
            }
        }

        result.Notes.Add("a stage-2 dump gives permissions and block sizes only: no memory type or IPAT (not compared), 4 KiB granule assumed");
        return result;
    }

    /// <summary>One line: a run of identical entries at one level.</summary>
    private static string? Run(ImportResult result, int lineNo, long ts, Match m)
    {
        var start = ulong.Parse(m.Groups["start"].Value, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
        var end = ulong.Parse(m.Groups["end"].Value, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
        var level = m.Groups["level"].Value[0] - '0';
        var printed = ulong.Parse(m.Groups["size"].Value, CultureInfo.InvariantCulture) << (10 * ("KMGTPE".IndexOf(m.Groups["unit"].Value[0], StringComparison.Ordinal) + 1));
        if (end <= start || end - start != printed)
        {
            return $"the range 0x{start:x}-0x{end:x} is not the {m.Groups["size"].Value}{m.Groups["unit"].Value} the line prints";
        }

        var attrs = m.Groups["attrs"].Value;
        if (attrs.Trim().Length == 0)
        {
            result.Count("empty range (nothing mapped)");
            return null;
        }

        if (attrs.TrimStart().StartsWith('F'))
        {
            // Invalid entries with a software annotation (pKVM page ownership): not a mapping.
            result.Count("invalid annotated range");
            return null;
        }

        var size = LevelSize(level);
        if (start % size != 0 || (end - start) % size != 0)
        {
            return $"0x{start:x}-0x{end:x} is not made of level-{level} blocks ({size >> 10} KiB)";
        }

        // The XN field: privileged execution is what a guest kernel needs ("px ux" and "px UXN" allow it).
        var exec = attrs.Contains("px ux", StringComparison.Ordinal) || attrs.Contains("px UXN", StringComparison.Ordinal);
        var perms = (attrs.Contains(" R ", StringComparison.Ordinal) ? Perms.R : 0) | (attrs.Contains(" W ", StringComparison.Ordinal) ? Perms.W : 0) | (exec ? Perms.X : 0);
        var raw = $"level {level} {string.Join(' ', attrs.Split(' ', StringSplitOptions.RemoveEmptyEntries))}";
        result.Events.Add(new ImportedEvent(lineNo, ts, new Stage2MappingObserved(new Gpa(start), size, null, null, perms, raw)));
        if (end - start > size)
        {
            result.Events.Add(new ImportedEvent(lineNo, ts, new Stage2MappingObserved(new Gpa(end - size), size, null, null, perms, raw)));
        }

        return null;
    }
}
