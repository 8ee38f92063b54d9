using Audit.Domain.Events;

namespace Audit.Api.Import;

/// <summary>
/// Flag arguments as strace prints them by name (PROT_READ|PROT_WRITE) or, under -X raw and -e raw=,
/// as numbers: the numbers are the generic Linux values, the same on x86_64 and arm64.
/// </summary>
internal static class StraceFlags
{
    public static Perms Prot(string s)
    {
        if (Syntax.TryNumber(s, out var n))
        {
            return (Perms)(int)(n & 7);
        }

        return (s.Contains("PROT_READ", StringComparison.Ordinal) ? Perms.R : 0) | (s.Contains("PROT_WRITE", StringComparison.Ordinal) ? Perms.W : 0) | (s.Contains("PROT_EXEC", StringComparison.Ordinal) ? Perms.X : 0);
    }

    private static readonly (ulong Bit, string Name)[] MapBits =
    [
        (0x01, "MAP_SHARED"), (0x02, "MAP_PRIVATE"), (0x10, "MAP_FIXED"), (0x20, "MAP_ANONYMOUS"), (0x40000, "MAP_HUGETLB"), (0x100000, "MAP_FIXED_NOREPLACE"),
    ];

    /// <summary>mmap flags as names ("MAP_SHARED|MAP_FIXED"), whether printed so or as a number.</summary>
    public static string Map(string s) =>
        Syntax.TryNumber(s, out var n) ? string.Join('|', MapBits.Where(b => (n & b.Bit) == b.Bit).Select(b => b.Name)) : s;

    private static readonly Dictionary<ulong, string> Advices = new()
    {
        [0] = "MADV_NORMAL", [1] = "MADV_RANDOM", [2] = "MADV_SEQUENTIAL", [3] = "MADV_WILLNEED", [4] = "MADV_DONTNEED", [8] = "MADV_FREE",
        [9] = "MADV_REMOVE", [10] = "MADV_DONTFORK", [11] = "MADV_DOFORK", [12] = "MADV_MERGEABLE", [13] = "MADV_UNMERGEABLE",
        [14] = "MADV_HUGEPAGE", [15] = "MADV_NOHUGEPAGE", [16] = "MADV_DONTDUMP", [17] = "MADV_DODUMP", [18] = "MADV_WIPEONFORK",
        [19] = "MADV_KEEPONFORK", [20] = "MADV_COLD", [21] = "MADV_PAGEOUT", [22] = "MADV_POPULATE_READ", [23] = "MADV_POPULATE_WRITE",
        [24] = "MADV_DONTNEED_LOCKED", [25] = "MADV_COLLAPSE", [100] = "MADV_HWPOISON",
    };

    public static string Advice(string s) => Syntax.TryNumber(s, out var n) ? Advices.GetValueOrDefault(n, $"MADV_{n}") : s;

    /// <summary>fallocate mode: FALLOC_FL_PUNCH_HOLE is 0x02.</summary>
    public static bool PunchHole(string s) =>
        Syntax.TryNumber(s, out var n) ? (n & 0x02) != 0 : s.Contains("PUNCH_HOLE", StringComparison.Ordinal);

    public static MemslotFlags Memslot(string s)
    {
        if (Syntax.TryNumber(s, out var n))
        {
            return (MemslotFlags)(int)(n & 0x7);
        }

        var flags = MemslotFlags.None;
        foreach (var name in s.Split('|', StringSplitOptions.TrimEntries))
        {
            flags |= Enum.TryParse<MemslotFlags>(name, out var f) ? f : MemslotFlags.None;
        }

        return flags;
    }
}
