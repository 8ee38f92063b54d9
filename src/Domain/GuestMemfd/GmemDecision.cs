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

    public static IoctlDecided Create(RunState s, GuestMemfdCreated e, long seq)
    {
        var why = new Why();
        var req = new Fact("request", $"fd {e.Fd} size {Fmt.Hex(e.Size)} flags {Fmt.Flags(e.Flags)}", seq);
        var errno = CreateErrno(s, e, why, req);
        return new IoctlDecided(seq, CreateIoctl, errno, e.Result, s.Policy.Id, why.Build());
    }

    /// <summary>
    /// kvm_gmem_create: x86 from 6.8 (flags must be 0 until 6.18), arm64 from 6.18. From 6.18
    /// kvm_gmem_get_supported_flags offers MMAP to every VM and INIT_SHARED only to VMs without
    /// private memory.
    /// </summary>
    private static int CreateErrno(RunState s, GuestMemfdCreated e, Why why, Fact req)
    {
        var flagsRule = s.Policy.Holds(Rules.GmemSupportedFlags) ? Rules.GmemSupportedFlags : Rules.GmemCreate;
        var supported = s.Arch == Arch.Arm64 ? s.Policy.GmemAbort : s.Policy.Holds(flagsRule);
        if (!supported)
        {
            why.Add(Rules.UnknownIoctl, "this kernel has no KVM_CREATE_GUEST_MEMFD: -ENOTTY", req, Facts.Policy(s));
            return Errno.ENOTTY;
        }

        var allowed = flagsRule == Rules.GmemSupportedFlags
            ? GuestMemfdFlags.MMAP | (s.HasPrivateMemory ? GuestMemfdFlags.None : GuestMemfdFlags.INIT_SHARED)
            : GuestMemfdFlags.None;
        if ((e.Flags & ~allowed) != 0)
        {
            why.Add(flagsRule, $"flags {Fmt.Flags(e.Flags & ~allowed)} not allowed for this VM and kernel (allowed: {Fmt.Flags(allowed)}): -EINVAL", req, Facts.Policy(s), Facts.VmType(s));
            return Errno.EINVAL;
        }

        if (e.Size == 0 || (e.Size & (s.PageSize - 1)) != 0)
        {
            why.Add(flagsRule, "size must be page aligned and above 0: -EINVAL", req);
            return Errno.EINVAL;
        }

        why.Add(flagsRule, $"creates guest_memfd fd {e.Fd} of {Fmt.Size(e.Size)}", req);
        return 0;
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
