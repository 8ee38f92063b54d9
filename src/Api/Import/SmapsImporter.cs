using System.Globalization;
using System.Text.RegularExpressions;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Projections.Serialization;

namespace Audit.Api.Import;

/// <summary>
/// A /proc/PID/smaps snapshot: each VMA with its VmFlags (sh, pf, io, mm, ht, mt -> VM_SHARED, VM_PFNMAP,
/// VM_IO, VM_MIXEDMAP, VM_HUGETLB, VM_MTE_ALLOWED), its page size and THP use, and a backing read off the
/// path (`anon_inode:[kvm-gmem]` is a guest_memfd, /dev/vfio a vfio region...). Alone, every VMA becomes
/// a VmaMapped without a time. Beside an strace file of the run it adds what strace cannot see to the
/// mmaps it covers (<see cref="Enrich"/>) instead. A /proc/PID/maps file (VMA lines only) is read the same
/// way with fewer facts (format "maps"): VM_SHARED from the s/p bit and the backing from the path, but no
/// VmFlags (VM_PFNMAP, VM_IO, VM_MIXEDMAP, VM_MTE_ALLOWED), page size or THP.
/// </summary>
public static partial class SmapsImporter
{
    [GeneratedRegex(@"^(?<start>[0-9a-f]+)-(?<end>[0-9a-f]+)\s+(?<perms>[-r][-w][-x][-sp])\s+(?<off>[0-9a-f]+)\s+(?<dev>[0-9a-f]+:[0-9a-f]+)\s+(?<inode>\d+)\s*(?<path>.*)$")]
    private static partial Regex VmaRx();

    [GeneratedRegex(@"^(?<key>[A-Za-z_]+):\s*(?<value>.*)$")]
    private static partial Regex FieldRx();

    public static bool Looks(string line) => VmaRx().IsMatch(line);

    private sealed record Vma(int Line, ulong Start, ulong End, Perms Prot, bool Shared, ulong Pgoff, string Path)
    {
        public VmaFlags Flags { get; set; }

        public ulong PageSize { get; set; } = 0x1000;

        public bool Thp { get; set; }
    }

    public static ImportResult Read(string file, TextReader reader)
    {
        var result = new ImportResult(file, "smaps");
        var vmas = new List<Vma>();
        var lineNo = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNo++;
            result.Lines++;
            if (string.IsNullOrWhiteSpace(line))
            {
                result.Count("blank");
                continue;
            }

            if (VmaRx().Match(line) is { Success: true } v)
            {
                if (!ulong.TryParse(v.Groups["start"].Value, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var start)
                    || !ulong.TryParse(v.Groups["end"].Value, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var end)
                    || end <= start || (start & 0xfff) != 0 || (end & 0xfff) != 0)
                {
                    result.Error = new TraceError(file, lineNo, "a VMA range must be page-aligned START-END with START < END");
                    return result;
                }

                var p = v.Groups["perms"].Value;
                var prot = (p[0] == 'r' ? Perms.R : 0) | (p[1] == 'w' ? Perms.W : 0) | (p[2] == 'x' ? Perms.X : 0);
                vmas.Add(new Vma(lineNo, start, end, prot, p[3] == 's', ulong.Parse(v.Groups["off"].Value, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture) >> 12, v.Groups["path"].Value.Trim()));
                continue;
            }

            if (FieldRx().Match(line) is not { Success: true } f)
            {
                result.Error = new TraceError(file, lineNo, "not an smaps line (expected 'START-END PERMS OFFSET DEV INODE PATH' or 'Field: value')");
                return result;
            }

            if (vmas.Count == 0)
            {
                result.Error = new TraceError(file, lineNo, $"'{f.Groups["key"].Value}:' before the first VMA line");
                return result;
            }

            var vma = vmas[^1];
            var value = f.Groups["value"].Value.Trim();
            switch (f.Groups["key"].Value)
            {
                case "VmFlags":
                    vma.Flags = Flags(value);
                    result.Count("VmFlags (read into its VMA)");
                    break;
                case "KernelPageSize" when Kb(value) is { } kb:
                    vma.PageSize = kb * 1024;
                    result.Count("KernelPageSize (read into its VMA)");
                    break;
                case "AnonHugePages" or "ShmemPmdMapped" or "FilePmdMapped" when Kb(value) is { } kb:
                    vma.Thp |= kb > 0;
                    result.Count($"{f.Groups["key"].Value} (read into its VMA)");
                    break;
                default:
                    result.Count("other smaps field (sizes, counters)");
                    break;
            }
        }

        var maps = vmas.Count > 0 && result.Counted.Keys.All(k => k == "blank");
        if (maps)
        {
            result.Format = "maps";
            result.Notes.Add("/proc/PID/maps, not smaps: VM_SHARED from the s/p bit and the backing from the path; no VmFlags (VM_PFNMAP, VM_IO, VM_MIXEDMAP, VM_MTE_ALLOWED), page size or THP, so the model treats those as absent");
        }

        foreach (var vma in vmas)
        {
            var range = new HvaRange(new Hva(vma.Start), new Hva(vma.End));
            if (maps)
            {
                vma.Flags = vma.Shared ? VmaFlags.VM_SHARED : VmaFlags.None;
            }

            var backing = new Backing(Kind(vma), vma.Path.Length > 0 ? vma.Path : null, Pgoff: vma.Pgoff, HostPageSize: maps ? null : vma.PageSize, Thp: maps ? null : vma.Thp);
            result.Events.Add(new ImportedEvent(vma.Line, null, new VmaMapped(range, vma.Prot, vma.Flags, null, backing)));
        }

        return result;
    }

    /// <summary>
    /// Adds the snapshot's knowledge to the strace mmaps inside its VMAs: VM_* flags, a backing kind strace
    /// cannot tell (guest_memfd, vfio, hugetlb...), the page size and THP. The snapshot's own VMAs are then
    /// counted, not stored twice. Returns how many mmaps were completed.
    /// </summary>
    public static int Enrich(ImportResult strace, ImportResult smaps)
    {
        var snapshot = smaps.Events.Select(e => (e.Line, Vma: (VmaMapped)e.Event)).ToList();
        var enriched = 0;
        for (var i = 0; i < strace.Events.Count; i++)
        {
            if (strace.Events[i].Event is not VmaMapped m)
            {
                continue;
            }

            var hit = snapshot.FirstOrDefault(s => s.Vma.Range.Start.Value <= m.Range.Start.Value && m.Range.Start.Value < s.Vma.Range.End.Value && Compatible(m.Backing.Kind, s.Vma.Backing.Kind));
            if (hit.Vma is not { } s)
            {
                continue;
            }

            var kind = m.Backing.Kind is BackingKind.Anon or BackingKind.File or BackingKind.Shmem ? s.Backing.Kind : m.Backing.Kind;
            var backing = m.Backing with
            {
                Kind = kind,
                Path = m.Backing.Path ?? s.Backing.Path,
                HostPageSize = m.Backing.HostPageSize ?? s.Backing.HostPageSize,
                Thp = m.Backing.Thp ?? s.Backing.Thp,
                Pgoff = m.Backing.Pgoff ?? (s.Backing.Pgoff + ((m.Range.Start.Value - s.Range.Start.Value) >> 12)),
            };
            strace.Events[i] = strace.Events[i] with { Event = m with { Flags = m.Flags | s.Flags, Backing = backing } };
            enriched++;
        }

        foreach (var (line, _) in snapshot)
        {
            smaps.Count($"VMA line (completes the mmaps of {Path.GetFileName(strace.File)})");
        }

        smaps.Events.Clear();
        return enriched;
    }

    /// <summary>strace knows anonymous from file-backed; the snapshot refines either, never swaps one for the other.</summary>
    private static bool Compatible(BackingKind fromStrace, BackingKind fromSmaps) =>
        fromStrace == fromSmaps || fromStrace is BackingKind.File or BackingKind.Shmem || (fromStrace == BackingKind.Anon && fromSmaps is BackingKind.Anon or BackingKind.Hugetlb);

    private static BackingKind Kind(Vma v)
    {
        var p = v.Path;
        if ((v.Flags & VmaFlags.VM_HUGETLB) != 0 || p.StartsWith("/dev/hugepages", StringComparison.Ordinal) || p.Contains("hugetlb", StringComparison.Ordinal))
        {
            return BackingKind.Hugetlb;
        }

        return p switch
        {
            "anon_inode:[kvm-gmem]" => BackingKind.GuestMemfd,
            _ when p.StartsWith("/dev/vfio", StringComparison.Ordinal) || p.StartsWith("anon_inode:[vfio", StringComparison.Ordinal) || p.Contains("vfio-device", StringComparison.Ordinal) => BackingKind.Vfio,
            _ when p is "/dev/mem" => BackingKind.Devmem,
            _ when p.StartsWith("/dev/dax", StringComparison.Ordinal) => BackingKind.Dax,
            _ when p.StartsWith("/memfd:", StringComparison.Ordinal) || p.StartsWith("/dev/shm/", StringComparison.Ordinal) || p.StartsWith("/SYSV", StringComparison.Ordinal) => BackingKind.Shmem,
            _ when p.Length == 0 || p.StartsWith('[') => v.Shared ? BackingKind.Shmem : BackingKind.Anon,
            _ => BackingKind.File,
        };
    }

    /// <summary>The two-letter VmFlags of fs/proc/task_mmu.c that the model reads.</summary>
    private static VmaFlags Flags(string value)
    {
        var flags = VmaFlags.None;
        foreach (var f in value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            flags |= f switch
            {
                "sh" => VmaFlags.VM_SHARED,
                "pf" => VmaFlags.VM_PFNMAP,
                "io" => VmaFlags.VM_IO,
                "mm" => VmaFlags.VM_MIXEDMAP,
                "ht" => VmaFlags.VM_HUGETLB,
                "mt" => VmaFlags.VM_MTE_ALLOWED,
                _ => VmaFlags.None,
            };
        }

        return flags;
    }

    private static ulong? Kb(string value)
    {
        var parts = value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return parts.Length >= 1 && ulong.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;
    }
}
