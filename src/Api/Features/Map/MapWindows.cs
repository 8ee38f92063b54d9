using System.Globalization;
using Audit.Api.Features.State;
using Audit.Projections.Temporal;

namespace Audit.Api.Features.Map;

/// <summary>
/// The map's level of detail. The page names the parts of the guest space it shows and the pixels each
/// is drawn on ("0x40000000-0x440000000:812,0x10000000-0x11000000:150"); the server answers one span per
/// pixel holding a block. A drag of the scrubber over a run with 35,000 blocks at a point asked the whole
/// map each time (1.5 MB, 0.2-1.2 s on a loaded host): the pixels, not the run, bound the answer now.
/// </summary>
public static class MapWindows
{
    public const int MaxWindows = 64;
    public const int MaxPixels = 16_384;

    /// <summary>"LO-HI:PIXELS" items separated by commas; an error names the item and the form.</summary>
    public static bool TryParse(string text, out IReadOnlyList<MapWindow>? windows, out string? error)
    {
        windows = null;
        error = null;
        var list = new List<MapWindow>();
        foreach (var item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var colon = item.LastIndexOf(':');
            if (colon < 0 || !GpaRanges.TryParse(item[..colon], out var range) || range.Hi <= range.Lo
                || !int.TryParse(item[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var px) || px is < 1 or > MaxPixels)
            {
                error = $"windows: '{item}' is not LO-HI:PIXELS (example: windows=0x40000000-0x440000000:800,0x10000000-0x11000000:150; 1-{MaxPixels} pixels)";
                return false;
            }

            var span = range.Hi - range.Lo;
            var cell = (span / (ulong)px) + (span % (ulong)px == 0 ? 0UL : 1UL);
            list.Add(Stage2Cells.Snap(range.Lo, range.Hi, cell) ?? new MapWindow(range.Lo, range.Hi, cell));
        }

        if (list.Count is 0 or > MaxWindows)
        {
            error = $"windows: give 1-{MaxWindows} LO-HI:PIXELS items (example: windows=0x40000000-0x440000000:800)";
            return false;
        }

        windows = list.OrderBy(w => w.Lo).ToList();
        return true;
    }

    /// <summary>The server's per-pixel spans as the map's columns, each kind read once from its text; a span of cells has the kind drawn for them, its granule the cell size.</summary>
    internal static (IReadOnlyList<MapKind> Kinds, MapBlocks Blocks) Columns(IReadOnlyList<Stage2Span> spans)
    {
        var kinds = new Dictionary<string, MapKind?>(StringComparer.Ordinal);
        MapKind? KindOf(string text)
        {
            if (!kinds.TryGetValue(text, out var kind))
            {
                var d = Stage2Text.ReadKind(text);
                kind = kinds[text] = d.IsMapped ? new MapKind(d.MemType!.Value.ToString(), d.Ipat, Domain.Model.Fmt.Perms(d.Perms!.Value), d.Granule!.Value, d.Policy!) : null;
            }

            return kind;
        }

        static MapKind CellKind(Stage2Span s)
        {
            var (memType, ipat) = Stage2Cells.KindOf(s.Bit);
            return new MapKind(memType.ToString(), ipat, "", s.CellSize, "", Cells: true);
        }

        return GetMapHandler.Columns(spans
            .OrderBy(s => s.Lo)
            .Select(s => (Span: s, Kind: s.CellSize > 0 ? CellKind(s) : KindOf(s.Kind)))
            .Where(p => p.Kind is not null)
            .Select(p => new MapPiece((ulong)p.Span.Lo, (ulong)(p.Span.Hi - p.Span.Lo), p.Kind!, p.Span.Count, p.Span.LastSeq)));
    }
}
