using System.Text;
using System.Text.RegularExpressions;

namespace Audit.Tests.Architecture;

/// <summary>A SQL text found in the source: a C# string literal (its constant holes filled in) or a migration statement.</summary>
public sealed record SqlText(string Where, string Text);

/// <summary>
/// Finds the SQL of the project as text: every C# string literal (regular, verbatim, raw, interpolated),
/// with holes that name a string constant replaced by the constant's value, and the statements of the
/// migration files (with the queries that drive DO blocks' loops). Which of them are statements is for
/// <see cref="RunScope"/> to say.
/// </summary>
public static partial class SqlSources
{
    /// <summary>The literals of several C# files, holes filled from the constants of all of them.</summary>
    public static IReadOnlyList<SqlText> InCSharp(IEnumerable<(string Where, string Code)> files)
    {
        var scanned = files.Select(f => (f.Where, f.Code, Literals: Literals(f.Code))).ToList();
        var constants = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var (_, code, literals) in scanned)
        {
            foreach (var (name, value) in Constants(code, literals))
            {
                // A name defined twice with different values is left unresolved rather than guessed.
                constants[name] = constants.TryGetValue(name, out var seen) && seen != value ? null : value;
            }
        }

        return scanned
            .SelectMany(f => f.Literals.Select(l => new SqlText($"{f.Where}:{Line(f.Code, l.Start)}", Resolve(l.Text, constants, 0))))
            .ToList();
    }

    /// <summary>The statements of a migration file, comments removed; a DO block gives the queries its loops run over.</summary>
    public static IReadOnlyList<SqlText> InMigration(string where, string sql)
    {
        var result = new List<SqlText>();
        foreach (var statement in SplitStatements(StripComments(sql)))
        {
            var text = statement.Trim();
            if (text.Length == 0)
            {
                continue;
            }

            if (DoBlock().IsMatch(text))
            {
                result.AddRange(LoopQuery().Matches(text).Select(m => new SqlText(where, m.Groups[1].Value)));
                continue;
            }

            result.Add(new SqlText(where, text));
        }

        return result;
    }

    /// <summary>A literal of C# source: its start offset and its text, holes kept as {expression}.</summary>
    public sealed record Literal(int Start, int End, string Text);

    public static List<Literal> Literals(string code)
    {
        var list = new List<Literal>();
        var i = 0;
        while (i < code.Length)
        {
            var c = code[i];
            if (c == '/' && i + 1 < code.Length && code[i + 1] == '/')
            {
                i = code.IndexOf('\n', i) is var nl and >= 0 ? nl : code.Length;
            }
            else if (c == '/' && i + 1 < code.Length && code[i + 1] == '*')
            {
                i = code.IndexOf("*/", i + 2, StringComparison.Ordinal) is var end and >= 0 ? end + 2 : code.Length;
            }
            else if (c == '\'')
            {
                i = SkipChar(code, i);
            }
            else if (c is '"' or '$' or '@' && StringAt(code, i) is { } lit)
            {
                list.Add(lit);
                i = lit.End;
            }
            else
            {
                i++;
            }
        }

        return list;
    }

    private static int SkipChar(string code, int i)
    {
        var j = i + 1;
        while (j < code.Length && code[j] != '\'')
        {
            j += code[j] == '\\' ? 2 : 1;
        }

        return j + 1;
    }

    /// <summary>The string literal starting at i (with its $ and @ prefixes), or null when none starts there.</summary>
    private static Literal? StringAt(string code, int i)
    {
        var j = i;
        var dollars = 0;
        var verbatim = false;
        while (j < code.Length && code[j] is '$' or '@')
        {
            dollars += code[j] == '$' ? 1 : 0;
            verbatim |= code[j] == '@';
            j++;
        }

        if (j >= code.Length || code[j] != '"' || j > i && i > 0 && (char.IsLetterOrDigit(code[i - 1]) || code[i - 1] == '_'))
        {
            return null;
        }

        var quotes = 0;
        while (j + quotes < code.Length && code[j + quotes] == '"')
        {
            quotes++;
        }

        if (quotes >= 3)
        {
            var delimiter = new string('"', quotes);
            var close = code.IndexOf(delimiter, j + quotes, StringComparison.Ordinal);
            var body = code[(j + quotes)..close];
            return new Literal(i, close + quotes, dollars > 0 ? Holes(body, dollars) : body);
        }

        if (quotes == 2)
        {
            return new Literal(i, j + 2, "");
        }

        var sb = new StringBuilder();
        var k = j + 1;
        while (k < code.Length)
        {
            var c = code[k];
            if (verbatim && c == '"' && k + 1 < code.Length && code[k + 1] == '"')
            {
                sb.Append('"');
                k += 2;
            }
            else if (c == '"')
            {
                break;
            }
            else if (!verbatim && c == '\\')
            {
                sb.Append(code[k + 1] switch { 'n' => '\n', 't' => '\t', var x => x });
                k += 2;
            }
            else if (dollars > 0 && c == '{' && k + 1 < code.Length && code[k + 1] == '{')
            {
                sb.Append('{');
                k += 2;
            }
            else if (dollars > 0 && c == '}' && k + 1 < code.Length && code[k + 1] == '}')
            {
                sb.Append('}');
                k += 2;
            }
            else if (dollars > 0 && c == '{')
            {
                var end = MatchingBrace(code, k);
                sb.Append('{').Append(HoleExpression(code[(k + 1)..end])).Append('}');
                k = end + 1;
            }
            else
            {
                sb.Append(c);
                k++;
            }
        }

        return new Literal(i, k + 1, sb.ToString());
    }

    /// <summary>The holes of a raw interpolated body ({expr} with one $, {{expr}} with two), as {expr}.</summary>
    private static string Holes(string body, int dollars)
    {
        var open = new string('{', dollars);
        var sb = new StringBuilder();
        var i = 0;
        while (i < body.Length)
        {
            if (string.CompareOrdinal(body, i, open, 0, dollars) == 0)
            {
                var end = MatchingBrace(body, i + dollars - 1);
                sb.Append('{').Append(HoleExpression(body[(i + dollars)..end])).Append('}');
                i = end + dollars;
            }
            else
            {
                sb.Append(body[i]);
                i++;
            }
        }

        return sb.ToString();
    }

    private static int MatchingBrace(string text, int open)
    {
        var depth = 0;
        for (var i = open; i < text.Length; i++)
        {
            if (text[i] == '"')
            {
                i = text.IndexOf('"', i + 1);
            }
            else if (text[i] == '{')
            {
                depth++;
            }
            else if (text[i] == '}' && --depth == 0)
            {
                return i;
            }
        }

        return text.Length - 1;
    }

    /// <summary>A hole's expression without its format or alignment ("x:0.0" -> "x").</summary>
    private static string HoleExpression(string hole)
    {
        var depth = 0;
        for (var i = 0; i < hole.Length; i++)
        {
            depth += hole[i] is '(' or '[' ? 1 : hole[i] is ')' or ']' ? -1 : 0;
            if (depth == 0 && hole[i] is ':' or ',' && !hole[..i].Contains('?', StringComparison.Ordinal))
            {
                return hole[..i].Trim();
            }
        }

        return hole.Trim();
    }

    /// <summary>`const string Name = part + part ...;` where each part is a literal or another constant's name.</summary>
    private static IEnumerable<(string Name, string Value)> Constants(string code, List<Literal> literals)
    {
        foreach (Match m in ConstDeclaration().Matches(code))
        {
            var parts = new StringBuilder();
            var i = m.Index + m.Length;
            while (i < code.Length)
            {
                while (i < code.Length && char.IsWhiteSpace(code[i]))
                {
                    i++;
                }

                if (literals.FirstOrDefault(l => l.Start == i) is { } lit)
                {
                    parts.Append(lit.Text);
                    i = lit.End;
                }
                else if (Identifier().Match(code, i) is { Success: true } id && id.Index == i)
                {
                    parts.Append('{').Append(id.Value).Append('}');
                    i += id.Length;
                }
                else
                {
                    break;
                }

                while (i < code.Length && char.IsWhiteSpace(code[i]))
                {
                    i++;
                }

                if (i < code.Length && code[i] == '+')
                {
                    i++;
                    continue;
                }

                break;
            }

            if (i < code.Length && code[i] == ';')
            {
                yield return (m.Groups[1].Value, parts.ToString());
            }
        }
    }

    /// <summary>Fills holes naming a constant (by its last name segment), recursively; other holes stay as {expression}.</summary>
    private static string Resolve(string text, IReadOnlyDictionary<string, string?> constants, int depth) =>
        depth > 8 ? text : HoleRef().Replace(text, m =>
        {
            var name = m.Groups[1].Value.Split('.')[^1];
            return constants.TryGetValue(name, out var value) && value is not null ? Resolve(value, constants, depth + 1) : m.Value;
        });

    private static int Line(string code, int offset) => 1 + code.AsSpan(0, offset).Count('\n');

    /// <summary>The SQL without its -- comments (outside quotes).</summary>
    public static string StripComments(string sql)
    {
        var sb = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < sql.Length; i++)
        {
            if (sql[i] == '\'')
            {
                quoted = !quoted;
            }

            if (!quoted && sql[i] == '-' && i + 1 < sql.Length && sql[i + 1] == '-')
            {
                i = sql.IndexOf('\n', i) is var nl and >= 0 ? nl - 1 : sql.Length;
                continue;
            }

            sb.Append(sql[i]);
        }

        return sb.ToString();
    }

    /// <summary>Splits on semicolons outside quotes and $$ bodies.</summary>
    private static IEnumerable<string> SplitStatements(string sql)
    {
        var start = 0;
        var quoted = false;
        var dollar = false;
        for (var i = 0; i < sql.Length; i++)
        {
            if (!dollar && sql[i] == '\'')
            {
                quoted = !quoted;
            }
            else if (!quoted && sql[i] == '$' && i + 1 < sql.Length && sql[i + 1] == '$')
            {
                dollar = !dollar;
                i++;
            }
            else if (!quoted && !dollar && sql[i] == ';')
            {
                yield return sql[start..i];
                start = i + 1;
            }
        }

        yield return sql[start..];
    }

    [GeneratedRegex(@"\bconst\s+string\s+(\w+)\s*=")]
    private static partial Regex ConstDeclaration();

    [GeneratedRegex(@"[A-Za-z_][\w.]*")]
    private static partial Regex Identifier();

    [GeneratedRegex(@"\{([A-Za-z_][\w.]*)\}")]
    private static partial Regex HoleRef();

    [GeneratedRegex(@"^do\s+\$\$", RegexOptions.IgnoreCase)]
    private static partial Regex DoBlock();

    [GeneratedRegex(@"\bfor\s+\w+\s+in\s+(select\b.*?)\s+loop\b", RegexOptions.IgnoreCase | RegexOptions.Singleline)]
    private static partial Regex LoopQuery();
}
