using Audit.Domain.Addresses;
using Audit.Domain.Events;

namespace Audit.Domain.Model;

/// <summary>How facts print in explanations: kernel names, hex addresses, rwx.</summary>
public static class Fmt
{
    public static string Perms(Perms p) =>
        string.Concat((p & Events.Perms.R) != 0 ? "r" : "-", (p & Events.Perms.W) != 0 ? "w" : "-", (p & Events.Perms.X) != 0 ? "x" : "-");

    public static string Flags<T>(T flags)
        where T : struct, Enum
    {
        var bits = Convert.ToUInt64(flags, System.Globalization.CultureInfo.InvariantCulture);
        if (bits == 0)
        {
            return "none";
        }

        var names = new List<string>();
        foreach (var v in Enum.GetValues<T>())
        {
            var b = Convert.ToUInt64(v, System.Globalization.CultureInfo.InvariantCulture);
            if (b != 0 && (bits & b) == b)
            {
                names.Add(v.ToString());
            }
        }

        return string.Join("|", names);
    }

    public static string MemType(HostMemType? t) => t switch
    {
        null => "unknown (cacheable assumed)",
        HostMemType.UC_MINUS => "UC-",
        _ => t.Value.ToString(),
    };

    public static string Size(ulong size) => size switch
    {
        >= 1UL << 30 when size % (1UL << 30) == 0 => $"{size >> 30}G",
        >= 1UL << 20 when size % (1UL << 20) == 0 => $"{size >> 20}M",
        >= 1UL << 10 when size % (1UL << 10) == 0 => $"{size >> 10}K",
        _ => size.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    public static string Hex(ulong v) => Addresses.Hex.Format(v);

    public static string Bool(bool b) => b ? "true" : "false";

    public static string Range(ulong start, ulong end) => $"[{Addresses.Hex.Format(start)}, {Addresses.Hex.Format(end)})";

    public static string Mapping(Mapping m) => $"{m.MemType}{(m.Ipat is { } ipat ? (ipat ? "+IPAT" : "") : "")} {Size(m.Size)} {Perms(m.Perms)} at {m.Gpa}";
}

/// <summary>Collects the ordered explanation of one decision.</summary>
public sealed class Why
{
    private readonly List<ExplanationStep> _steps = new(8);

    public Why Add(Rule rule, string text, params Fact[] facts)
    {
        _steps.Add(new ExplanationStep(rule.Id, text, new ValueList<Fact>(facts)));
        return this;
    }

    public ValueList<ExplanationStep> Build() => new(_steps);
}
