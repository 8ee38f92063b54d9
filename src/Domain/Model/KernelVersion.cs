using System.Globalization;

namespace Audit.Domain.Model;

/// <summary>A kernel release as major.minor (patch and local suffixes ignored).</summary>
public readonly record struct KernelVersion(int Major, int Minor) : IComparable<KernelVersion>
{
    /// <summary>The oldest release the model covers.</summary>
    public static KernelVersion Oldest => new(5, 10);

    /// <summary>The newest release the model covers.</summary>
    public static KernelVersion Newest => new(6, 18);

    /// <summary>The last minor of each major the model crosses (5.19 was followed by 6.0).</summary>
    private static int LastMinor(int major) => major == 5 ? 19 : int.MaxValue;

    /// <summary>Parses `6.8.0-45-generic`, `6.17.3`, `6.18`; unparsable or missing text counts as the newest release.</summary>
    public static KernelVersion Parse(string? text) => TryParse(text, out var v) ? v : Newest;

    public static bool TryParse(string? text, out KernelVersion version)
    {
        version = default;
        if (text is null)
        {
            return false;
        }

        var parts = text.Trim().Split('.', '-', '+');
        if (parts.Length >= 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var major)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var minor))
        {
            version = new KernelVersion(major, minor);
            return true;
        }

        return false;
    }

    /// <summary>The release after this one (5.19 -> 6.0).</summary>
    public KernelVersion Next => Minor >= LastMinor(Major) ? new(Major + 1, 0) : new(Major, Minor + 1);

    /// <summary>The release before this one (6.0 -> 5.19).</summary>
    public KernelVersion Previous => Minor == 0 ? new(Major - 1, LastMinor(Major - 1)) : new(Major, Minor - 1);

    /// <summary>Every release from <paramref name="from"/> to <paramref name="to"/>, both included.</summary>
    public static IReadOnlyList<KernelVersion> Range(KernelVersion from, KernelVersion to)
    {
        var list = new List<KernelVersion>();
        for (var v = from; v <= to; v = v.Next)
        {
            list.Add(v);
        }

        return list;
    }

    public int CompareTo(KernelVersion other) => Major != other.Major ? Major.CompareTo(other.Major) : Minor.CompareTo(other.Minor);

    public static bool operator <(KernelVersion a, KernelVersion b) => a.CompareTo(b) < 0;
    public static bool operator >(KernelVersion a, KernelVersion b) => a.CompareTo(b) > 0;
    public static bool operator <=(KernelVersion a, KernelVersion b) => a.CompareTo(b) <= 0;
    public static bool operator >=(KernelVersion a, KernelVersion b) => a.CompareTo(b) >= 0;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Major}.{Minor}");
}
