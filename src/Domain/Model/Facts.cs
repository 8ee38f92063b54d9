using Audit.Domain.Events;

namespace Audit.Domain.Model;

/// <summary>Facts as explanations cite them: a name, a value, and the seq of the event that set it.</summary>
internal static class Facts
{
    public static Fact Policy(RunState s) => s.PolicyFact;

    private static readonly string[] AccessText = ["read", "write", "exec"];
    private static readonly string[] KindText = ["translation", "permission", "access_flag"];

    private static readonly string[] FaultPrefix =
        [.. from a in AccessText from k in KindText select $"{a} {k} fault at "];

    /// <summary>"write translation fault at 0x40080000": built in one string, the address written in place (one per fault).</summary>
    public static Fact Fault(GuestFaulted f, long seq)
    {
        Span<char> hex = stackalloc char[18];
        hex[0] = '0';
        hex[1] = 'x';
        f.Gpa.Value.TryFormat(hex[2..], out var digits, "x", System.Globalization.CultureInfo.InvariantCulture);
        var suffix = f.Private is { } p ? (p ? " (private)" : " (shared)") : "";
        return new("fault", string.Concat(FaultPrefix[((int)f.Access * KindText.Length) + (int)f.Kind], hex[..(digits + 2)], suffix), seq);
    }

    public static Fact Slot(MemslotState m) => m.Fact;

    public static Fact SlotFlags(MemslotState m) => m.FlagsFact;

    public static Fact Vma(VmaState v) => v.Fact;

    public static Fact VmaFlags(VmaState v) => v.FlagsFact;

    public static Fact VmaMemType(VmaState v) => v.MemTypeFact;

    public static Fact VmaProt(VmaState v) => v.ProtFact;

    public static Fact LinearMap(VmaState v) => v.LinearMapFact;

    public static Fact StructPage(VmaState v) => v.StructPageFact;

    public static Fact Cap(RunState s, string name, bool? value) => new(name switch
    {
        "fwb" => "host.caps.fwb",
        "cacheDic" => "host.caps.cacheDic",
        _ => "host.caps." + name,
    }, value is null ? "unknown (false)" : Fmt.Bool(value.Value), s.HostSeq);

    public static Fact VmType(RunState s) => new("vm.type", s.VmType.ToString().ToLowerInvariant(), s.VmSeq);

    public static Fact Kernel(RunState s) => new("host.kernel", s.Host?.Kernel ?? "unknown", s.HostSeq);
}
