using System.Globalization;
using System.Text.RegularExpressions;

namespace Audit.Api.Import;

/// <summary>A descriptor as strace -y/-yy prints it: "8&lt;/memfd:guest-ram&gt;(deleted)" is fd 8, that path, deleted.</summary>
public readonly record struct Descriptor(ulong Number, string? Path, bool Deleted);

/// <summary>
/// The pieces of one strace line, whatever options printed it: the leader (`[pid N]` or `N`, with
/// --decode-pids=comm's `&lt;comm&gt;`; -t/-tt/-ttt or --absolute-timestamps; -r's relative seconds, `(+S)`
/// beside -t; -n's syscall number; -i's instruction pointer), then the call, its result and -T's duration.
/// </summary>
public static partial class StraceLine
{
    [GeneratedRegex(@"^\s*(?:\[pid\s+(?<pid>\d+)(?:<[^>]*>)?\]\s*|(?<pid>\d+)(?:<[^>]*>)?\s+)?(?:(?<ts>\d{1,2}:\d{2}:\d{2}(?:\.\d+)?|\d{9,}\.\d+)\s+)?(?:\(\+\s*(?<rel>\d+(?:\.\d+)?)\)\s+|(?<rel>\d{1,8}\.\d+)\s+)?(?:\[\s*\d+\]\s+)?(?:\[[0-9a-f]{8,16}\]\s+)?(?<rest>\S.*)$")]
    private static partial Regex LeaderRx();

    [GeneratedRegex(@"^(?<call>\w+)\((?<args>.*)\)\s+=\s+(?<ret>.+)$")]
    private static partial Regex CallRx();

    [GeneratedRegex(@"^(?<call>\w+)\((?<args>.*?)\s*<unfinished \.\.\.>\)?(?:\s+=\s+\?.*)?$")]
    private static partial Regex UnfinishedRx();

    [GeneratedRegex(@"^<\.\.\. (?<call>\w+) resumed>\s*(?<args>.*)\)\s+=\s+(?<ret>.+)$")]
    private static partial Regex ResumedRx();

    public readonly record struct Leader(string Pid, string? Ts, string? Rel, string Rest);

    public static Leader? Parse(string line) =>
        LeaderRx().Match(line) is { Success: true } m
            ? new Leader(m.Groups["pid"].Value, m.Groups["ts"].Success ? m.Groups["ts"].Value : null, m.Groups["rel"].Success ? m.Groups["rel"].Value : null, m.Groups["rest"].Value)
            : null;

    public static Match Call(string rest) => CallRx().Match(rest);

    public static Match Unfinished(string rest) => UnfinishedRx().Match(rest);

    public static Match Resumed(string rest) => ResumedRx().Match(rest);

    /// <summary>-tt/-t: time of day in ns; -ttt: ns since the epoch.</summary>
    public static long Time(string s)
    {
        if (s.Contains(':', StringComparison.Ordinal))
        {
            var p = s.Split(':');
            var seconds = decimal.Parse(p[2], CultureInfo.InvariantCulture);
            return (long)(((int.Parse(p[0], CultureInfo.InvariantCulture) * 3600) + (int.Parse(p[1], CultureInfo.InvariantCulture) * 60) + seconds) * 1_000_000_000m);
        }

        return (long)(decimal.Parse(s, CultureInfo.InvariantCulture) * 1_000_000_000m);
    }

    /// <summary>
    /// A result: "0x7f81ecb2b000", "-1 EINVAL (Invalid argument)", "8&lt;/memfd:x&gt;(deleted)", "0 (KVM_EXIT_MMIO)"
    /// (--kvm=vcpu), "? ", each maybe followed by -T's "&lt;0.000012&gt;".
    /// </summary>
    public readonly record struct Result(string Value, Descriptor? Fd, string? Errno, string? Aux)
    {
        public bool Ok => !Value.StartsWith('-') && Value != "?";
    }

    public static Result ParseResult(string ret)
    {
        ret = ret.Trim();
        if (ret.EndsWith('>') && ret.LastIndexOf(" <", StringComparison.Ordinal) is var d and > 0 && ret[(d + 2)..^1].All(c => char.IsDigit(c) || c == '.'))
        {
            ret = ret[..d].TrimEnd();
        }

        var end = 0;
        while (end < ret.Length && ret[end] is not (' ' or '<'))
        {
            end++;
        }

        var value = ret[..end];
        Descriptor? fd = null;
        if (end < ret.Length && ret[end] == '<')
        {
            var close = DecorationEnd(ret, end);
            fd = Decorated(ret[..close]);
            end = close;
        }

        var tail = ret[end..].Trim();
        string? errno = null;
        if (tail.StartsWith('E') && tail.Split(' ')[0] is var e && e.All(c => char.IsUpper(c) || char.IsDigit(c)))
        {
            errno = e;
            tail = tail[e.Length..].Trim();
        }

        var aux = tail.StartsWith('(') && tail.EndsWith(')') ? tail[1..^1] : null;
        return new Result(value, fd, errno, aux);
    }

    /// <summary>"N&lt;path&gt;" or "N&lt;path&gt;(deleted)" as a descriptor; null when the text is not one.</summary>
    public static Descriptor? Decorated(string arg)
    {
        var lt = arg.IndexOf('<', StringComparison.Ordinal);
        if (lt <= 0 || !Syntax.TryNumber(arg[..lt], out var fd))
        {
            return null;
        }

        var close = DecorationEnd(arg, lt);
        if (close > arg.Length || arg[(close - 1)..close] != ">")
        {
            return null;
        }

        var path = arg[(lt + 1)..(close - 1)];
        var deleted = arg[close..].Trim() == "(deleted)";

        // -yy adds what the path is in a nested <...> ("/dev/kvm<char 10:232>"): the path is before it.
        if (path.EndsWith('>') && path.LastIndexOf('<') is var inner and > 0)
        {
            path = path[..inner];
        }

        // Older kernels and -y without -yy leave the kernel's " (deleted)" inside the path.
        if (path.EndsWith(" (deleted)", StringComparison.Ordinal))
        {
            (path, deleted) = (path[..^" (deleted)".Length], true);
        }

        return new Descriptor(fd, path, deleted);
    }

    /// <summary>The index after the '&gt;' closing the '&lt;' at <paramref name="open"/>: nested brackets count, and "->" inside [] (a TCP peer) does not.</summary>
    private static int DecorationEnd(string s, int open)
    {
        var depth = 0;
        var square = 0;
        for (var i = open; i < s.Length; i++)
        {
            switch (s[i])
            {
                case '[':
                    square++;
                    break;
                case ']':
                    square = Math.Max(0, square - 1);
                    break;
                case '<' when square == 0:
                    depth++;
                    break;
                case '>' when square == 0:
                    if (--depth == 0)
                    {
                        return i + 1;
                    }

                    break;
            }
        }

        return s.Length + 1;
    }

    /// <summary>
    /// One argument as the importer reads it: -N's "name=" dropped, and -X verbose's "0x3 /* PROT_READ|PROT_WRITE */"
    /// read by its symbolic part (the number stays where the comment is a number).
    /// </summary>
    public static string Plain(string arg)
    {
        arg = arg.Trim();
        if (arg.Length > 0 && char.IsAsciiLetterLower(arg[0]) && arg.IndexOf('=', StringComparison.Ordinal) is var eq and > 0 && arg[..eq].All(c => char.IsAsciiLetterLower(c) || char.IsDigit(c) || c == '_'))
        {
            arg = arg[(eq + 1)..].Trim();
        }

        var comment = arg.IndexOf("/*", StringComparison.Ordinal);
        if (comment > 0 && arg.EndsWith("*/", StringComparison.Ordinal) && !arg.StartsWith('{'))
        {
            var symbolic = arg[(comment + 2)..^2].Trim();
            return symbolic.Length > 0 && !char.IsDigit(symbolic[0]) ? symbolic : arg[..comment].Trim();
        }

        return arg;
    }

    /// <summary>A quoted string, -s N's truncation mark ("guest-r"...) dropped.</summary>
    public static string Unquote(string s)
    {
        s = s.Trim();
        if (s.EndsWith("...", StringComparison.Ordinal))
        {
            s = s[..^3];
        }

        return s.Trim('"');
    }
}
