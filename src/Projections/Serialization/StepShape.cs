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

    private static SeqKind SeqOf(long? seq, long inputSeq, List<ulong> args)
    {
        if (seq is not { } s)
        {
            return SeqKind.None;
        }

        if (s == inputSeq)
        {
            return SeqKind.Self;
        }

        if (s >= 0 && s <= inputSeq && s < 1L << 62)
        {
            // Early events (the VMA, the memslot) are small seqs; recent ones (the block a fault splits) are close behind.
            var back = (ulong)(inputSeq - s);
            args.Add(Math.Min((ulong)s << 1, back < 1UL << 62 ? (back << 1) | 1 : ulong.MaxValue));
            return SeqKind.Near;
        }

        args.Add(Varint.ZigZag(s));
        return SeqKind.Wide;
    }

    private static long Near(ulong v, long inputSeq) => (v & 1) == 0 ? (long)(v >> 1) : inputSeq - (long)(v >> 1);

    /// <summary>The parts of a text between its canonical hex literals (those <see cref="Hex.Format"/> prints back the same).</summary>
    private static ValueList<string> Split(string text, List<ulong> args)
    {
        List<string>? parts = null;
        var start = 0;
        var i = text.IndexOf("0x", StringComparison.Ordinal);
        while (i >= 0)
        {
            var end = i + 2;
            while (end < text.Length && (char.IsAsciiDigit(text[end]) || text[end] is >= 'a' and <= 'f'))
            {
                end++;
            }

            if (IsLiteral(text, i, end) && Hex.TryParse(text[i..end], out var v) && Hex.Format(v).AsSpan().SequenceEqual(text.AsSpan(i, end - i)))
            {
                parts ??= [];
                parts.Add(text[start..i]);
                args.Add(v);
                start = end;
            }

            i = text.IndexOf("0x", Math.Max(end, i + 1), StringComparison.Ordinal);
        }

        if (parts is null)
        {
            return ValueList.Of(text);
        }

        parts.Add(text[start..]);
        return new ValueList<string>(parts);
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
