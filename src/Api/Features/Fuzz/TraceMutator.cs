using System.Text;

namespace Audit.Api.Features.Fuzz;

/// <summary>
/// Damages a real trace the ways files get damaged: a line cut short, dropped, repeated or moved,
/// a character flipped, a number made huge or negative, bytes that are not text, a missing field.
/// Seeded: the same seed gives the same inputs, so a failure can be replayed.
/// </summary>
public static class TraceMutator
{
    private static readonly string[] Junk = ["\0", "\uFFFD", "\t", "\r", "{", "}", "\"", ",", ":", "0x", "-1", "18446744073709551616", "NaN", "null", "[]", "\\u0000", "é", "𝄞", " "];

    /// <summary>A window of at most <paramref name="maxLines"/> lines of <paramref name="trace"/>, with 1 to 3 mutations.</summary>
    public static string Mutate(string trace, Random rng, int maxLines = 80)
    {
        var all = trace.Split('\n');
        var start = all.Length <= maxLines || rng.Next(3) == 0 ? 0 : rng.Next(all.Length - maxLines);
        var lines = all.Skip(start).Take(maxLines).ToList();
        for (var n = rng.Next(1, 4); n > 0 && lines.Count > 0; n--)
        {
            MutateOnce(lines, rng);
        }

        return string.Join('\n', lines);
    }

    private static void MutateOnce(List<string> lines, Random rng)
    {
        var i = rng.Next(lines.Count);
        var line = lines[i];
        switch (rng.Next(9))
        {
            case 0:
                lines[i] = line[..rng.Next(line.Length + 1)];
                break;
            case 1:
                lines.RemoveAt(i);
                break;
            case 2:
                lines.Insert(i, line);
                break;
            case 3:
                var j = rng.Next(lines.Count);
                (lines[i], lines[j]) = (lines[j], lines[i]);
                break;
            case 4:
                lines[i] = Splice(line, rng, Junk[rng.Next(Junk.Length)]);
                break;
            case 5:
                lines[i] = FlipDigit(line, rng);
                break;
            case 6:
                lines[i] = DropField(line, rng);
                break;
            case 7:
                lines[i] = Encoding.Latin1.GetString(Enumerable.Range(0, rng.Next(1, 40)).Select(_ => (byte)rng.Next(256)).ToArray());
                break;
            default:
                lines[i] = line.Replace("0x", rng.Next(2) == 0 ? "0xffffffffffffffff" : "-0x", StringComparison.Ordinal);
                break;
        }
    }

    private static string Splice(string line, Random rng, string text)
    {
        var at = rng.Next(line.Length + 1);
        return line[..at] + text + line[at..];
    }

    private static string FlipDigit(string line, Random rng)
    {
        var digits = Enumerable.Range(0, line.Length).Where(k => char.IsAsciiDigit(line[k])).ToList();
        if (digits.Count == 0)
        {
            return line;
        }

        var k = digits[rng.Next(digits.Count)];
        return line[..k] + (char)('0' + rng.Next(10)) + new string('9', rng.Next(3) * 8) + line[(k + 1)..];
    }

    /// <summary>Removes one "key": value pair of a JSON line, or one space-separated word of a text line.</summary>
    private static string DropField(string line, Random rng)
    {
        var parts = line.Split(line.TrimStart().StartsWith('{') ? ", " : " ");
        if (parts.Length < 2)
        {
            return line;
        }

        var drop = rng.Next(parts.Length);
        return string.Join(line.TrimStart().StartsWith('{') ? ", " : " ", parts.Where((_, k) => k != drop));
    }
}
