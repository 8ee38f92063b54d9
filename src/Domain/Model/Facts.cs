using Audit.Domain.Events;

namespace Audit.Domain.Model;

/// <summary>Facts as explanations cite them: a name, a value, and the seq of the event that set it.</summary>
internal static class Facts
{
    public static Fact Policy(RunState s) => new("policy", s.Policy.Id, null);

    public static Fact Fault(GuestFaulted f, long seq) =>
        new("fault", $"{f.Access.ToString().ToLowerInvariant()} {f.Kind.ToString().ToLowerInvariant()} fault at {f.Gpa}{(f.Private is { } p ? (p ? " (private)" : " (shared)") : "")}", seq);

    public static Fact Slot(MemslotState m) => new("memslot", m.ToString(), m.Seq);

    public static Fact SlotFlags(MemslotState m) => new("memslot.flags", Fmt.Flags(m.Flags), m.FlagsSeq);

    public static Fact Vma(VmaState v) => new("vma", $"{Fmt.Range(v.Start, v.End)} {Fmt.Perms(v.Prot)} {v.Backing.Kind.ToString().ToLowerInvariant()}{(v.Backing.Path is { } p ? " " + p : "")}", v.Seq);

    public static Fact VmaFlags(VmaState v) => new("vma.flags", Fmt.Flags(v.Flags), v.Seq);

    public static Fact VmaMemType(VmaState v) => new("vma.memType", Fmt.MemType(v.MemType), v.ProtSeq);

    public static Fact VmaProt(VmaState v) => new("vma.prot", Fmt.Perms(v.Prot), v.ProtSeq);

    public static Fact LinearMap(VmaState v) => new("pfn_is_map_memory", Fmt.Bool(v.LinearMap), v.Seq);

    public static Fact StructPage(VmaState v) => new("pfn_valid", Fmt.Bool(v.StructPage), v.Seq);

    public static Fact Cap(RunState s, string name, bool? value) => new("host.caps." + name, value is null ? "unknown (false)" : Fmt.Bool(value.Value), s.HostSeq);

    public static Fact VmType(RunState s) => new("vm.type", s.VmType.ToString().ToLowerInvariant(), s.VmSeq);

    public static Fact Kernel(RunState s) => new("host.kernel", s.Host?.Kernel ?? "unknown", s.HostSeq);
}
