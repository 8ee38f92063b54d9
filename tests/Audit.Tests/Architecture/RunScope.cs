using System.Text.RegularExpressions;

namespace Audit.Tests.Architecture;

/// <summary>
/// The rule that lets the store be distributed by run (ADR 0011): a statement that reads or writes a
/// run-keyed table names one run for each such table it touches (run_id = a parameter, a literal or a
/// value of the caller), and all those run ids are the same one, so Citus can route it to one shard.
/// A table in a hole ({leaf}, {table}) is a leaf of one run's projection rows and needs the filter too:
/// on a cluster the leaf has a shard on every node, and only the filter routes to the run's.
/// Writes that carry the run id in their rows route by themselves: INSERT with run_id given a parameter,
/// COPY with a run_id column.
/// </summary>
public static partial class RunScope
{
    /// <summary>Tables created by the migrations with a run_id column, and the names they were renamed to.</summary>
    public static IReadOnlySet<string> RunKeyedTables(IEnumerable<string> migrations)
    {
        var tables = new HashSet<string>(StringComparer.Ordinal);
        foreach (var sql in migrations.Select(SqlSources.StripComments))
        {
            foreach (Match m in CreateTable().Matches(sql))
            {
                if (RunIdColumn().IsMatch(m.Groups[2].Value))
                {
                    tables.Add(m.Groups[1].Value.ToLowerInvariant());
                }
            }

            foreach (Match m in RenameTable().Matches(sql))
            {
                if (tables.Contains(m.Groups[1].Value.ToLowerInvariant()))
                {
                    tables.Add(m.Groups[2].Value.ToLowerInvariant());
                }
            }
        }

        return tables;
    }

    /// <summary>Whether a text is a statement to judge: it reads or writes rows, or holds a FROM/JOIN clause (a fragment of one).</summary>
    public static bool IsQuery(string text) => QueryStart().IsMatch(text) || TableRef().IsMatch(Unquoted(text.ToLowerInvariant()));

    /// <summary>Why the statement breaks the rule, or null when it keeps it (or touches no run-keyed table).</summary>
    public static string? Violation(string statement, IReadOnlySet<string> runKeyed)
    {
        var text = Regex.Replace(statement.ToLowerInvariant(), @"\s+", " ");
        var bare = Unquoted(text);
        var filters = RunFilter().Matches(text).Select(m => (Alias: m.Groups["q"].Value, Value: m.Groups["v"].Value)).ToList();
        var used = new bool[filters.Count];
        var runs = new HashSet<string>(StringComparer.Ordinal);
        foreach (Match r in TableRef().Matches(bare))
        {
            var table = r.Groups["t"].Value;
            var function = r.Groups["k"].Value is "from" or "join" && bare[(r.Groups["t"].Index + table.Length)..].TrimStart().StartsWith('(');
            if (function || !(table.StartsWith('{') || runKeyed.Contains(table.Split('.')[^1])))
            {
                continue;
            }

            var alias = r.Groups["a"].Success && !Keywords.Contains(r.Groups["a"].Value) ? r.Groups["a"].Value : null;
            if (r.Groups["k"].Value is "copy" && CopiesRunIds(bare, r))
            {
                continue;
            }

            if (r.Groups["k"].Value is "into" && InsertedRunId(bare, r) is { } inserted)
            {
                runs.Add(inserted);
                continue;
            }

            var i = alias is null ? -1 : filters.FindIndex(f => f.Alias == alias);
            for (var j = 0; i < 0 && j < filters.Count; j++)
            {
                i = !used[j] && filters[j].Alias.Length == 0 ? j : -1;
            }

            if (i < 0)
            {
                return $"{table} is read or written without a run id filter (add run_id = $n)";
            }

            used[i] = true;
            runs.Add(filters[i].Value);
        }

        return runs.Count > 1 ? $"joins across runs: run ids {string.Join(", ", runs.Order(StringComparer.Ordinal))}" : null;
    }

    /// <summary>COPY t (..., run_id, ...) FROM: each row names its run.</summary>
    private static bool CopiesRunIds(string text, Match r)
    {
        var rest = text[(r.Index + r.Length)..].TrimStart();
        return rest.StartsWith("from", StringComparison.Ordinal) || rest.StartsWith('(') && ColumnList(rest).Contains("run_id");
    }

    /// <summary>The value an INSERT gives run_id when it is a parameter or a caller's value (VALUES or a SELECT list), else null.</summary>
    private static string? InsertedRunId(string text, Match r)
    {
        var rest = text[(r.Index + r.Length)..].TrimStart();
        if (!rest.StartsWith('('))
        {
            return null;
        }

        var columns = ColumnList(rest);
        var index = columns.IndexOf("run_id");
        var after = rest[(rest.IndexOf(')') + 1)..].TrimStart();
        var list = after.StartsWith("values", StringComparison.Ordinal)
            ? after[(after.IndexOf('(') + 1)..]
            : after.StartsWith("select ", StringComparison.Ordinal) ? after["select ".Length..] : null;
        if (index < 0 || list is null)
        {
            return null;
        }

        var values = TopLevelItems(list);
        return index < values.Count && RunValue().IsMatch(values[index].Trim()) ? values[index].Trim() : null;
    }

    private static List<string> ColumnList(string parenthesized) =>
        parenthesized[1..parenthesized.IndexOf(')')].Split(',').Select(c => c.Trim()).ToList();

    /// <summary>Comma-separated items up to the first unbalanced ')' or a FROM at depth 0.</summary>
    private static List<string> TopLevelItems(string text)
    {
        var items = new List<string>();
        var depth = 0;
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '(')
            {
                depth++;
            }
            else if (text[i] == ')' && depth-- == 0 || depth == 0 && string.CompareOrdinal(text, i, " from ", 0, 6) == 0)
            {
                items.Add(text[start..i]);
                return items;
            }
            else if (text[i] == ',' && depth == 0)
            {
                items.Add(text[start..i]);
                start = i + 1;
            }
        }

        items.Add(text[start..]);
        return items;
    }

    /// <summary>The text with the contents of SQL string literals blanked (table names inside them are not references).</summary>
    private static string Unquoted(string text) => Quoted().Replace(text, "''");

    private static readonly HashSet<string> Keywords = new(StringComparer.Ordinal)
    {
        "where", "set", "on", "join", "left", "right", "inner", "cross", "full", "order", "group", "limit", "union",
        "returning", "using", "select", "values", "for", "lateral", "from", "as", "and", "or", "natural", "having",
        "offset", "window", "except", "intersect", "default", "only", "with", "to", "stdin", "stdout",
    };

    [GeneratedRegex(@"create\s+table\s+(?:if\s+not\s+exists\s+)?(\w+)\s*\((.*?)\)\s*(?:partition\s+by[^;]*)?;", RegexOptions.IgnoreCase | RegexOptions.Singleline)]
    private static partial Regex CreateTable();

    [GeneratedRegex(@"(^|\n|\()\s*run_id\s+text", RegexOptions.IgnoreCase)]
    private static partial Regex RunIdColumn();

    [GeneratedRegex(@"alter\s+table\s+(\w+)\s+rename\s+to\s+(\w+)", RegexOptions.IgnoreCase)]
    private static partial Regex RenameTable();

    [GeneratedRegex(@"^\s*(select|insert|update|delete|copy|with)\b", RegexOptions.IgnoreCase)]
    private static partial Regex QueryStart();

    /// <summary>A table in a position that reads or writes it, with its alias: FROM/JOIN/UPDATE/INTO/COPY t [as] a.</summary>
    [GeneratedRegex(@"\b(?<k>from|join|update|into|copy)\s+(?:only\s+)?(?<t>\{[^}]*\}|[a-z_][a-z0-9_.]*)(?:\s+(?:as\s+)?(?<a>[a-z_][a-z0-9_]*))?")]
    private static partial Regex TableRef();

    /// <summary>[alias.]run_id = one run: a parameter, a caller's value in a hole, or a literal.</summary>
    [GeneratedRegex(@"(?:\b(?<q>[a-z_][a-z0-9_]*)\.)?\brun_id\s*=\s*(?<v>\$\d+|\{[^}]*\}|'[^']*')")]
    private static partial Regex RunFilter();

    [GeneratedRegex(@"^(\$\d+|\{[^}]*\}|'[^']*')$")]
    private static partial Regex RunValue();

    [GeneratedRegex(@"'(?:[^']|'')*'")]
    private static partial Regex Quoted();
}
