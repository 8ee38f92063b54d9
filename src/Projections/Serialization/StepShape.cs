using System.Text;
using System.Text.Json;
using Audit.Domain;
using Audit.Domain.Addresses;
using Audit.Domain.Events;

namespace Audit.Projections.Serialization;

/// <summary>How a fact of a <see cref="StepShape"/> cites its event.</summary>
public enum SeqKind : byte
{
    /// <summary>No event (a policy default, a derived value).</summary>
    None,

    /// <summary>The decision's own input event: nothing is stored per decision.</summary>
    Self,

    /// <summary>An event at or before the input, stored per decision as the smaller of its seq and its distance back.</summary>
    Near,

    /// <summary>Any other seq (negative, after the input, beyond 2^62), stored zigzagged.</summary>
    Wide,
}

public sealed record FactShape(string Name, ValueList<string> Value, SeqKind Seq);

/// <summary>
/// An explanation step with what changes from one decision to the next taken out (ADR 0013): every
/// canonical hex literal of its text and fact values (the gpa of a fault, the hva of a VMA) and every
/// fact's seq. A 10M-event run has a few dozen shapes where it has millions of distinct steps; a
/// decision stores the shape's id and those values as varints, and reading puts the same text back.
/// </summary>
/// <param name="Text">The text split at its hex literals: n parts hold n - 1 values.</param>
public sealed record StepShape(string Rule, ValueList<string> Text, ValueList<FactShape> Facts)
{
    /// <summary>The shape of a step, appending the values it took out to <paramref name="args"/> in reading order.</summary>
    public static StepShape Of(ExplanationStep step, long inputSeq, List<ulong> args)
    {
        var text = Split(step.Text, args);
        var facts = new FactShape[step.Facts.Count];
        for (var i = 0; i < facts.Length; i++)
        {
            var f = step.Facts[i];
            var value = Split(f.Value, args);
            facts[i] = new FactShape(f.Name, value, SeqOf(f.Seq, inputSeq, args));
        }

        return new StepShape(step.Rule, text, ValueList<FactShape>.Own(facts));
    }

    /// <summary>The step again, reading its values from <paramref name="from"/> at <paramref name="n"/>.</summary>
    public ExplanationStep Render(ReadOnlySpan<byte> from, ref int n, long inputSeq)
    {
        var text = Join(Text, from, ref n);
        var facts = new Fact[Facts.Count];
        for (var i = 0; i < facts.Length; i++)
        {
            var f = Facts[i];
            var value = Join(f.Value, from, ref n);
            long? seq = f.Seq switch
            {
                SeqKind.None => null,
                SeqKind.Self => inputSeq,
                SeqKind.Near => Near(Varint.Get(from, ref n), inputSeq),
                _ => Varint.GetSigned(from, ref n),
            };
            facts[i] = new Fact(f.Name, value, seq);
        }

        return new ExplanationStep(Rule, text, ValueList<Fact>.Own(facts));
    }

    /// <summary>How a fact's seq is stored (<see cref="SeqOf"/> without its value).</summary>
    private static SeqKind KindOf(long? seq, long inputSeq) => seq switch
    {
        null => SeqKind.None,
        { } s when s == inputSeq => SeqKind.Self,
        { } s when s >= 0 && s <= inputSeq && s < 1L << 62 => SeqKind.Near,
        _ => SeqKind.Wide,
    };

    /// <summary>How a fact's seq is stored, its value appended to <paramref name="args"/> when the kind stores one.</summary>
    private static SeqKind SeqOf(long? seq, long inputSeq, List<ulong> args)
    {
        var kind = KindOf(seq, inputSeq);
        if (kind == SeqKind.Near)
        {
            // Early events (the VMA, the memslot) are small seqs; recent ones (the block a fault splits) are close behind.
            var (s, back) = (seq!.Value, (ulong)(inputSeq - seq.Value));
            args.Add(Math.Min((ulong)s << 1, back < 1UL << 62 ? (back << 1) | 1 : ulong.MaxValue));
        }
        else if (kind == SeqKind.Wide)
        {
            args.Add(Varint.ZigZag(seq!.Value));
        }

        return kind;
    }

    private static long Near(ulong v, long inputSeq) => (v & 1) == 0 ? (long)(v >> 1) : inputSeq - (long)(v >> 1);

    /// <summary>The parts of a text between its canonical hex literals (those <see cref="Hex.Format"/> prints back the same).</summary>
    private static ValueList<string> Split(string text, List<ulong> args)
    {
        List<string>? parts = null;
        var (pos, from) = (0, 0);
        while (NextLiteral(text, ref pos, out var start, out var value))
        {
            parts ??= [];
            parts.Add(text[from..start]);
            args.Add(value);
            from = pos;
        }

        if (parts is null)
        {
            return ValueList.Of(text);
        }

        parts.Add(text[from..]);
        return new ValueList<string>(parts);
    }

    /// <summary>
    /// The next canonical hex literal at or after <paramref name="pos"/>: where it starts, its value, and
    /// <paramref name="pos"/> moved past it. A literal <see cref="IsLiteral"/> accepts (lowercase digits, no
    /// leading zero, at most 16) is exactly what <see cref="Hex.Format"/> prints for its value.
    /// </summary>
    private static bool NextLiteral(string text, ref int pos, out int start, out ulong value)
    {
        var i = text.IndexOf("0x", pos, StringComparison.Ordinal);
        while (i >= 0)
        {
            var end = i + 2;
            while (end < text.Length && (char.IsAsciiDigit(text[end]) || text[end] is >= 'a' and <= 'f'))
            {
                end++;
            }

            if (IsLiteral(text, i, end)
                && ulong.TryParse(text.AsSpan(i + 2, end - i - 2), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out value))
            {
                (start, pos) = (i, end);
                return true;
            }

            i = text.IndexOf("0x", Math.Max(end, i + 1), StringComparison.Ordinal);
        }

        (start, value, pos) = (text.Length, 0, text.Length);
        return false;
    }

    /// <summary>The values <see cref="Of"/> takes out of a step, in the same order, without making its shape (a shape the table has).</summary>
    public static void ArgsOf(ExplanationStep step, long inputSeq, List<ulong> args)
    {
        AddLiterals(step.Text, args);
        foreach (var f in step.Facts)
        {
            AddLiterals(f.Value, args);
            SeqOf(f.Seq, inputSeq, args);
        }
    }

    private static void AddLiterals(string text, List<ulong> args)
    {
        var pos = 0;
        while (NextLiteral(text, ref pos, out _, out var value))
        {
            args.Add(value);
        }
    }

    /// <summary>Whether <paramref name="step"/> has this shape: what <see cref="Of"/> would make of it equals this one.</summary>
    public bool Matches(ExplanationStep step, long inputSeq)
    {
        if (!string.Equals(Rule, step.Rule, StringComparison.Ordinal) || Facts.Count != step.Facts.Count || !PartsMatch(Text, step.Text))
        {
            return false;
        }

        for (var i = 0; i < Facts.Count; i++)
        {
            var (mine, theirs) = (Facts[i], step.Facts[i]);
            if (!string.Equals(mine.Name, theirs.Name, StringComparison.Ordinal) || mine.Seq != KindOf(theirs.Seq, inputSeq) || !PartsMatch(mine.Value, theirs.Value))
            {
                return false;
            }
        }

        return true;
    }

    private static bool PartsMatch(ValueList<string> parts, string text)
    {
        var (pos, from, k) = (0, 0, 0);
        while (NextLiteral(text, ref pos, out var start, out _))
        {
            if (k >= parts.Count - 1 || !text.AsSpan(from, start - from).SequenceEqual(parts[k]))
            {
                return false;
            }

            from = pos;
            k++;
        }

        return k == parts.Count - 1 && text.AsSpan(from).SequenceEqual(parts[k]);
    }

    /// <summary>The hash of the shape <see cref="Of"/> would make of a step, computed from the step alone; equal to <see cref="Hash(StepShape)"/> of that shape.</summary>
    public static int Hash(ExplanationStep step, long inputSeq)
    {
        var h = new HashCode();
        h.Add(string.GetHashCode(step.Rule.AsSpan()));
        AddParts(ref h, step.Text);
        h.Add(step.Facts.Count);
        foreach (var f in step.Facts)
        {
            h.Add(string.GetHashCode(f.Name.AsSpan()));
            AddParts(ref h, f.Value);
            h.Add((int)KindOf(f.Seq, inputSeq));
        }

        return h.ToHashCode();
    }

    /// <summary>The hash of a shape, as <see cref="Hash(ExplanationStep, long)"/> computes it from a step of that shape.</summary>
    public static int Hash(StepShape shape)
    {
        var h = new HashCode();
        h.Add(string.GetHashCode(shape.Rule.AsSpan()));
        AddParts(ref h, shape.Text);
        h.Add(shape.Facts.Count);
        foreach (var f in shape.Facts)
        {
            h.Add(string.GetHashCode(f.Name.AsSpan()));
            AddParts(ref h, f.Value);
            h.Add((int)f.Seq);
        }

        return h.ToHashCode();
    }

    private static void AddParts(ref HashCode h, string text)
    {
        var (pos, from, n) = (0, 0, 0);
        while (NextLiteral(text, ref pos, out var start, out _))
        {
            h.Add(string.GetHashCode(text.AsSpan(from, start - from)));
            from = pos;
            n++;
        }

        h.Add(string.GetHashCode(text.AsSpan(from)));
        h.Add(n + 1);
    }

    private static void AddParts(ref HashCode h, ValueList<string> parts)
    {
        foreach (var part in parts)
        {
            h.Add(string.GetHashCode(part.AsSpan()));
        }

        h.Add(parts.Count);
    }

    /// <summary>A whole word, 1-16 digits, no leading zero: only then does it read back as written.</summary>
    private static bool IsLiteral(string text, int at, int end)
    {
        var digits = end - at - 2;
        return digits is >= 1 and <= 16
            && (digits == 1 || text[at + 2] != '0')
            && (at == 0 || !char.IsAsciiLetterOrDigit(text[at - 1]))
            && (end == text.Length || !(char.IsAsciiLetterOrDigit(text[end]) || text[end] == '_'));
    }

    private static string Join(ValueList<string> parts, ReadOnlySpan<byte> from, ref int n)
    {
        if (parts.Count == 1)
        {
            return parts[0];
        }

        var sb = new StringBuilder(parts[0]);
        for (var i = 1; i < parts.Count; i++)
        {
            sb.Append(Hex.Format(Varint.Get(from, ref n))).Append(parts[i]);
        }

        return sb.ToString();
    }

    /// <summary>The shape as stored in explanation_steps: <c>{"shape": {"rule", "text": [parts], "facts": [{"name", "value": [parts], "seq"}]}}</c>.</summary>
    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartObject("shape");
            w.WriteString("rule", Rule);
            WriteParts(w, "text", Text);
            w.WriteStartArray("facts");
            foreach (var f in Facts)
            {
                w.WriteStartObject();
                w.WriteString("name", f.Name);
                WriteParts(w, "value", f.Value);
                w.WriteString("seq", f.Seq.ToString().ToLowerInvariant());
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>The shape in a stored entry, or null when the entry is a whole step (ADR 0004).</summary>
    public static StepShape? FromJson(JsonElement entry)
    {
        if (!entry.TryGetProperty("shape", out var s))
        {
            return null;
        }

        var facts = s.GetProperty("facts").EnumerateArray()
            .Select(f => new FactShape(f.GetProperty("name").GetString()!, ReadParts(f.GetProperty("value")), Enum.Parse<SeqKind>(f.GetProperty("seq").GetString()!, ignoreCase: true)))
            .ToList();
        return new StepShape(s.GetProperty("rule").GetString()!, ReadParts(s.GetProperty("text")), new ValueList<FactShape>(facts));
    }

    private static void WriteParts(Utf8JsonWriter w, string name, ValueList<string> parts)
    {
        w.WriteStartArray(name);
        foreach (var p in parts)
        {
            w.WriteStringValue(p);
        }

        w.WriteEndArray();
    }

    private static ValueList<string> ReadParts(JsonElement array) => new(array.EnumerateArray().Select(p => p.GetString()!));
}

/// <summary>A step looked up in a table of shapes by the shape it has, without making that shape (<see cref="ShapeComparer"/>).</summary>
public readonly record struct ShapeProbe(ExplanationStep Step, long InputSeq);

/// <summary>
/// Shapes compared by value, and found from a step by the shape it has: a writer looks up every step of every
/// decision it stores, and making the shape to look it up allocated the text's parts and every fact's.
/// </summary>
public sealed class ShapeComparer : IEqualityComparer<StepShape>, IAlternateEqualityComparer<ShapeProbe, StepShape>
{
    public static readonly ShapeComparer Instance = new();

    public bool Equals(StepShape? x, StepShape? y) => EqualityComparer<StepShape>.Default.Equals(x, y);

    public int GetHashCode(StepShape obj) => StepShape.Hash(obj);

    public bool Equals(ShapeProbe alternate, StepShape other) => other.Matches(alternate.Step, alternate.InputSeq);

    public int GetHashCode(ShapeProbe alternate) => StepShape.Hash(alternate.Step, alternate.InputSeq);

    public StepShape Create(ShapeProbe alternate) => StepShape.Of(alternate.Step, alternate.InputSeq, []);
}
