using System.Globalization;
using System.Text.RegularExpressions;

namespace Audit.Projections.Serialization;

/// <summary>
/// Event times as nanoseconds: RFC 3339 times become ns since the Unix epoch; integer times
/// (monotonic clocks) are kept as given. Times before 2000-01-01 are printed back as integers,
/// so both forms round-trip.
/// </summary>
public static partial class Timestamps
{
    private const long Y2000Ns = 946_684_800L * 1_000_000_000L;

    [GeneratedRegex(@"^(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$", RegexOptions.CultureInvariant)]
    private static partial Regex Rfc3339();

    public static bool TryParse(string text, out long ns)
    {
        ns = 0;
        var m = Rfc3339().Match(text.Trim());
        if (!m.Success)
        {
            return false;
        }

        var offset = m.Groups[3].Value is "Z" or "z" ? "+00:00" : m.Groups[3].Value;
        if (!DateTimeOffset.TryParseExact(
                m.Groups[1].Value.Replace(' ', 'T').Replace('t', 'T') + offset,
                "yyyy-MM-dd'T'HH:mm:sszzz",
                CultureInfo.InvariantCulture,
                DateTimeStyles.None,
                out var dto))
        {
            return false;
        }

        var frac = m.Groups[2].Success ? m.Groups[2].Value.PadRight(9, '0') : "0";
        // Nanoseconds in a long end in 2262 (and the checked product threw on later years): a later time is not one.
        var seconds = dto.ToUnixTimeSeconds();
        if (seconds is < 0 or > long.MaxValue / 1_000_000_000L - 1)
        {
            return false;
        }

        ns = seconds * 1_000_000_000L + long.Parse(frac, CultureInfo.InvariantCulture);
        return true;
    }

    public static string Format(long ns)
    {
        if (ns < Y2000Ns)
        {
            return ns.ToString(CultureInfo.InvariantCulture);
        }

        var seconds = Math.DivRem(ns, 1_000_000_000L, out var frac);
        var dt = DateTimeOffset.FromUnixTimeSeconds(seconds).UtcDateTime;
        var fraction = frac == 0 ? "" : "." + frac.ToString("D9", CultureInfo.InvariantCulture).TrimEnd('0');
        return dt.ToString("yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture) + fraction + "Z";
    }

    /// <summary>True when the value is written as a JSON number rather than a string.</summary>
    public static bool IsInteger(long ns) => ns < Y2000Ns;
}
