using Audit.Domain.Addresses;
using Audit.Domain.Events;

namespace Audit.Domain.Model;

/// <summary>How facts print in explanations: kernel names, hex addresses, rwx.</summary>
public static class Fmt
{
    private static readonly string[] PermText = ["---", "r--", "-w-", "rw-", "--x", "r-x", "-wx", "rwx"];

    public static string Perms(Perms p) => PermText[(int)p & 7];

    /// <summary>Kernel flag names joined with '|' ("none" for no flag); cached per value, as explanations print them per fault.</summary>
    public static string Flags<T>(T flags)
        where T : struct, Enum => FlagText<T>.Of(flags);

    private static class FlagText<T>
        where T : struct, Enum
    {
        private static readonly (ulong Bit, string Name)[] Bits = Enum.GetValues<T>()
            .Select(v => (Convert.ToUInt64(v, System.Globalization.CultureInfo.InvariantCulture), v.ToString()))
            .Where(x => x.Item1 != 0)
            .ToArray();

        private static readonly System.Collections.Concurrent.ConcurrentDictionary<T, string> Cache = new();

        public static string Of(T flags) => Cache.GetOrAdd(flags, static f =>
        {
            var bits = Convert.ToUInt64(f, System.Globalization.CultureInfo.InvariantCulture);
            var names = Bits.Where(b => (bits & b.Bit) == b.Bit).Select(b => b.Name).ToList();
            return names.Count == 0 ? "none" : string.Join("|", names);
        });
    }

    public static string MemType(HostMemType? t) => t switch
    {
        null => "unknown (cacheable assumed)",
        HostMemType.UC_MINUS => "UC-",
        _ => t.Value.ToString(),
    };

    public static string Size(ulong size) => size switch
    {
        0x1000 => "4K",
        0x200000 => "2M",
        0x40000000 => "1G",
        >= 1UL << 30 when size % (1UL << 30) == 0 => $"{size >> 30}G",
        >= 1UL << 20 when size % (1UL << 20) == 0 => $"{size >> 20}M",
        >= 1UL << 10 when size % (1UL << 10) == 0 => $"{size >> 10}K",
        _ => size.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    public static string Hex(ulong v) => Addresses.Hex.Format(v);

    public static string Bool(bool b) => b ? "true" : "false";

    public static string Range(ulong start, ulong end) => $"[{Addresses.Hex.Format(start)}, {Addresses.Hex.Format(end)})";

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(Stage2MemType, ulong, bool?, Perms), string> Shapes = new();

    /// <summary>"Normal 2M r-x": the shape of a mapping without its address (cached).</summary>
    public static string Shape(Stage2MemType memType, ulong size, bool? ipat, Perms perms) =>
        Shapes.GetOrAdd((memType, size, ipat, perms), static k => $"{k.Item1}{(k.Item3 == true ? "+IPAT" : "")} {Size(k.Item2)} {Perms(k.Item4)}");

    /// <summary>Cached texts that vary only by a few values; the tag, a string literal, keeps texts with keys of one type apart.</summary>
    /// <remarks>The tag is compared by reference (literals are interned): hashing its characters on every fault cost more than the lookup.</remarks>
    public static string Cached<TKey>(string tag, TKey key, Func<TKey, string> make)
        where TKey : notnull => TextCache<TKey>.Items.GetOrAdd((tag, key), static (k, make) => make(k.Key), make);

    private static class TextCache<TKey>
        where TKey : notnull
    {
        public static readonly System.Collections.Concurrent.ConcurrentDictionary<(string Tag, TKey Key), string> Items = new(new TagComparer());

        private sealed class TagComparer : IEqualityComparer<(string Tag, TKey Key)>
        {
            public bool Equals((string Tag, TKey Key) a, (string Tag, TKey Key) b) =>
                ReferenceEquals(a.Tag, b.Tag) && EqualityComparer<TKey>.Default.Equals(a.Key, b.Key);

            public int GetHashCode((string Tag, TKey Key) k) =>
                HashCode.Combine(System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(k.Tag), EqualityComparer<TKey>.Default.GetHashCode(k.Key));
        }
    }

    public static string Mapping(Mapping m) => $"{m.MemType}{(m.Ipat is { } ipat ? (ipat ? "+IPAT" : "") : "")} {Size(m.Size)} {Perms(m.Perms)} at {m.Gpa}";
}

/// <summary>Collects the ordered explanation of one decision.</summary>
/// <remarks>
/// An array of its own rather than a List: a fault's decision is a handful of steps, and the List's
/// object and spare slots were an eighth of what the engine allocated per fault.
/// </remarks>
public sealed class Why
{
    private readonly RunState? _lender;
    private ExplanationStep[] _steps;
    private int _count;

    public Why() => _steps = new ExplanationStep[8];

    /// <summary>A decision's explanation, in the array its run lends (one per fault was 88 bytes of 1,367 allocated).</summary>
    /// <remarks>Taken, not shared: a second explanation begun before this one is built gets an array of its own.</remarks>
    internal Why(RunState run)
    {
        _lender = run;
        _steps = run.WhyScratch ?? new ExplanationStep[8];
        run.WhyScratch = null;
    }

    public Why Add(Rule rule, string text, params ReadOnlySpan<Fact> facts) => Push(new ExplanationStep(rule.Id, text, ValueList<Fact>.Own(facts.ToArray())));

    /// <summary>
    /// Adds a step of a rule that most faults take with the same text and the same fact objects (a VMA's
    /// facts, the policy's): the step the memo holds is cited again when it matches, so those faults
    /// allocate neither a step nor its facts' array.
    /// </summary>
    public Why Add(StepMemo memo, Rule rule, string text, params ReadOnlySpan<Fact> facts) => Push(memo.For(rule, text, facts));

    private Why Push(ExplanationStep step)
    {
        if (_count == _steps.Length)
        {
            Array.Resize(ref _steps, _count * 2);
        }

        _steps[_count++] = step;
        return this;
    }

    /// <summary>Forgets the steps added so far (a context reused for the run's next decision).</summary>
    internal void Clear()
    {
        Array.Clear(_steps, 0, _count);
        _count = 0;
    }

    public ValueList<ExplanationStep> Build()
    {
        var steps = ValueList<ExplanationStep>.Own(_steps.AsSpan(0, _count).ToArray());
        if (_lender is not null)
        {
            Array.Clear(_steps, 0, _count);
            _lender.WhyScratch = _steps;
        }

        return steps;
    }
}
