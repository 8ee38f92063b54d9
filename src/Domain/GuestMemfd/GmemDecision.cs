using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Domain.GuestMemfd;

/// <summary>
/// KVM_CREATE_GUEST_MEMFD and KVM_SET_MEMORY_ATTRIBUTES (virt/kvm/guest_memfd.c, kvm_main.c) and the
/// in-place conversion proposal (seed 002); domain.md section 5.
/// </summary>
internal static class GmemDecision
{
    public const string CreateIoctl = "KVM_CREATE_GUEST_MEMFD";
    public const string AttributesIoctl = "KVM_SET_MEMORY_ATTRIBUTES";

    /// <summary>What kvm_gmem_create knows while its rules run.</summary>
    internal sealed record CreateCtx(RunState S, GuestMemfdCreated E, Why Why, Fact Req);

    /// <summary>An errno as a chain outcome (0: created).</summary>
    internal sealed record Outcome(int Errno);

    /// <summary>
    /// kvm_gmem_create by release: the ioctl exists on x86 from 6.8 and on arm64 from 6.18; flags must be
    /// 0 until 6.18, when kvm_gmem_get_supported_flags offers MMAP to every VM and INIT_SHARED only to
    /// VMs without private memory.
    /// </summary>
    private static readonly RuleChain<CreateCtx, Outcome> CreateChain = new(
    [
        new(Rules.UnknownIoctl, CreateExists),
        new(Rules.GmemCreate, c => CreateWith(c, Rules.GmemCreate, GuestMemfdFlags.None)),
        new(Rules.GmemSupportedFlags, c => CreateWith(c, Rules.GmemSupportedFlags, GuestMemfdFlags.MMAP | (c.S.HasPrivateMemory ? GuestMemfdFlags.None : GuestMemfdFlags.INIT_SHARED))),
    ]);

    public static IoctlDecided Create(RunState s, GuestMemfdCreated e, long seq)
    {
        var c = new CreateCtx(s, e, new Why(), new Fact("request", $"fd {e.Fd} size {Fmt.Hex(e.Size)} flags {Fmt.Flags(e.Flags)}", seq));
        var errno = CreateChain.Decide(s.Policy, c).Errno;
        return new IoctlDecided(seq, CreateIoctl, errno, e.Result, s.Policy.Id, c.Why.Build());
    }

    private static Outcome? CreateExists(CreateCtx c)
    {
        var exists = c.S.Arch == Arch.Arm64 ? c.S.Policy.GmemAbort : c.S.Policy.Holds(Rules.GmemCreate) || c.S.Policy.Holds(Rules.GmemSupportedFlags);
        if (exists)
        {
            return null;
        }

        c.Why.Add(Rules.UnknownIoctl, "this kernel has no KVM_CREATE_GUEST_MEMFD: -ENOTTY", c.Req, Facts.Policy(c.S));
        return new Outcome(Errno.ENOTTY);
    }

    private static Outcome CreateWith(CreateCtx c, Rule rule, GuestMemfdFlags allowed)
    {
        var e = c.E;
        if ((e.Flags & ~allowed) != 0)
        {
            c.Why.Add(rule, $"flags {Fmt.Flags(e.Flags & ~allowed)} not allowed for this VM and kernel (allowed: {Fmt.Flags(allowed)}): -EINVAL", c.Req, Facts.Policy(c.S), Facts.VmType(c.S));
            return new Outcome(Errno.EINVAL);
        }

        if (e.Size == 0 || (e.Size & (c.S.PageSize - 1)) != 0)
        {
            c.Why.Add(rule, "size must be page aligned and above 0: -EINVAL", c.Req);
            return new Outcome(Errno.EINVAL);
        }

        c.Why.Add(rule, $"creates guest_memfd fd {e.Fd} of {Fmt.Size(e.Size)}", c.Req);
        return new Outcome(0);
    }

    public static IoctlDecided Attributes(RunState s, MemoryAttributesSet e, long seq, out bool noop)
    {
        var why = new Why();
        var req = new Fact("request", $"gpa {e.Gpa} size {Fmt.Hex(e.Size)} -> {(e.Private ? "private" : "shared")}", seq);
        noop = false;
        int errno;
        if (!s.Policy.Holds(Rules.Attributes) || s.Arch == Arch.Arm64)
        {
            why.Add(Rules.UnknownIoctl, "this kernel has no KVM_SET_MEMORY_ATTRIBUTES for the VM: -ENOTTY", req, Facts.Policy(s));
            errno = Errno.ENOTTY;
        }
        else if (e.Private && !s.HasPrivateMemory)
        {
            why.Add(Rules.Attributes, "PRIVATE is not a supported attribute for this VM type: -EINVAL", req, Facts.VmType(s));
            errno = Errno.EINVAL;
        }
        else if (e.Size == 0 || (e.Gpa.Value & (s.PageSize - 1)) != 0 || (e.Size & (s.PageSize - 1)) != 0 || e.Gpa.Value + e.Size < e.Gpa.Value)
        {
            why.Add(Rules.Attributes, "the range must be page aligned and non-empty: -EINVAL", req);
            errno = Errno.EINVAL;
        }
        else
        {
            errno = 0;
            var privateNow = s.PrivateAttr.Overlapping(e.Gpa.Value, e.Gpa.Value + e.Size);
            var covered = privateNow.Sum(i => (decimal)(Math.Min(i.End, e.Gpa.Value + e.Size) - Math.Max(i.Start, e.Gpa.Value)));
            noop = e.Private ? covered == e.Size : privateNow.Count == 0;
            why.Add(Rules.Attributes, noop
                ? $"the range already is {(e.Private ? "private" : "shared")}: nothing changes"
                : $"the range becomes {(e.Private ? "private" : "shared")}; mappings of the old kind are zapped", req, Facts.VmType(s));
        }

        return new IoctlDecided(seq, AttributesIoctl, errno, e.Result, s.Policy.Id, why.Build());
    }

    public static IoctlDecided Convert(RunState s, GuestMemfdConverted e, long seq)
    {
        var why = new Why();
        var req = new Fact("request", $"fd {e.Fd} [{Fmt.Hex(e.Offset)}, {Fmt.Hex(e.Offset + e.Size)}) -> {e.To.ToString().ToLowerInvariant()} via {e.Via}", seq);
        int errno;
        if (!s.Gmem.TryGetValue(e.Fd, out var g) || g.ClosedSeq is not null)
        {
            why.Add(Rules.GmemConvert, $"fd {e.Fd} is not an open guest_memfd: -EBADF", req);
            errno = Errno.EBADF;
        }
        else if (e.Size == 0 || (e.Offset & (s.PageSize - 1)) != 0 || (e.Size & (s.PageSize - 1)) != 0 || e.Offset + e.Size > g.Size)
        {
            why.Add(Rules.GmemConvert, "the range must be page aligned, non-empty and inside the file: -EINVAL", req, new Fact("guest_memfd", $"fd {e.Fd} size {Fmt.Hex(g.Size)}", g.Seq));
            errno = Errno.EINVAL;
        }
        else if (e.To == Shareability.Private && e.Result == Errno.EAGAIN)
        {
            // Page references are not observable in a trace; the recorded EAGAIN is the fact that they existed.
            why.Add(Rules.GmemConvert, $"converting to private found other references to the pages (recorded -EAGAIN, error_offset {Fmt.Hex(e.ErrorOffset ?? e.Offset)}); host mappings were unmapped first", req);
            errno = Errno.EAGAIN;
        }
        else
        {
            why.Add(Rules.GmemConvert, $"the range becomes {e.To.ToString().ToLowerInvariant()} in the guest_memfd; KVM mappings of the range are zapped", req, new Fact("guest_memfd", $"fd {e.Fd} flags {Fmt.Flags(g.Flags)}", g.Seq));
            errno = 0;
        }

        return new IoctlDecided(seq, "KVM_GMEM_CONVERT", errno, e.Result, s.Policy.Id, why.Build());
    }
}
