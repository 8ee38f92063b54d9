namespace Audit.Api.Import;

/// <summary>
/// KVM ioctls however strace printed the command: by name, as -X raw's number (0x4020ae46), as _IOC(dir,
/// 0xae, nr, size) where its ioctl table lacks the name, or -X verbose's "0xae80 /* KVM_RUN */"; and what
/// the arch-specific ones say about the host.
/// </summary>
internal static class KvmIoctls
{
    /// <summary>KVMIO (0xae) command numbers (include/uapi/linux/kvm.h), the same on every architecture.</summary>
    private static readonly Dictionary<ulong, string> ByNumber = new()
    {
        [0x01] = "KVM_CREATE_VM", [0x03] = "KVM_CHECK_EXTENSION", [0x04] = "KVM_GET_VCPU_MMAP_SIZE", [0x05] = "KVM_GET_SUPPORTED_CPUID",
        [0x41] = "KVM_CREATE_VCPU", [0x42] = "KVM_GET_DIRTY_LOG", [0x46] = "KVM_SET_USER_MEMORY_REGION", [0x47] = "KVM_SET_TSS_ADDR",
        [0x48] = "KVM_SET_IDENTITY_MAP_ADDR", [0x49] = "KVM_SET_USER_MEMORY_REGION2", [0x60] = "KVM_CREATE_IRQCHIP", [0x80] = "KVM_RUN",
        [0x81] = "KVM_GET_REGS", [0x82] = "KVM_SET_REGS", [0x83] = "KVM_GET_SREGS", [0x84] = "KVM_SET_SREGS", [0x90] = "KVM_SET_CPUID2",
        [0xa3] = "KVM_ENABLE_CAP", [0xae] = "KVM_ARM_VCPU_INIT", [0xaf] = "KVM_ARM_PREFERRED_TARGET", [0xd2] = "KVM_SET_MEMORY_ATTRIBUTES",
        [0xd4] = "KVM_CREATE_GUEST_MEMFD",
    };

    /// <summary>The command's name; a number outside KVM's table stays as printed.</summary>
    public static string Name(string printed)
    {
        var p = printed.Split(" or ")[0].Trim();
        if (p.StartsWith("_IOC(", StringComparison.Ordinal) && p.EndsWith(')'))
        {
            var parts = Syntax.SplitArgs(p[5..^1]);
            return parts.Count == 4 && parts[1] == "0xae" && Syntax.TryNumber(parts[2], out var nr) && ByNumber.TryGetValue(nr, out var n) ? n : p;
        }

        if (Syntax.TryNumber(p, out var code) && ((code >> 8) & 0xff) == 0xae && ByNumber.TryGetValue(code & 0xff, out var name))
        {
            return name;
        }

        return p;
    }

    private static readonly HashSet<string> X86Only = new(StringComparer.Ordinal)
    {
        "KVM_SET_CPUID2", "KVM_GET_SUPPORTED_CPUID", "KVM_GET_SREGS", "KVM_SET_SREGS", "KVM_SET_TSS_ADDR", "KVM_SET_IDENTITY_MAP_ADDR",
        "KVM_SET_MSRS", "KVM_GET_MSRS", "KVM_SET_LAPIC", "KVM_GET_LAPIC", "KVM_SET_XCRS", "KVM_SET_XSAVE", "KVM_SET_CPUID", "KVM_SET_PIT2",
        "KVM_CREATE_PIT2", "KVM_X86_SETUP_MCE", "KVM_SET_TSC_KHZ",
    };

    /// <summary>x86-only exits; arm64 has none of port I/O, HLT or the x86 exceptions.</summary>
    private static readonly HashSet<string> X86Exits = new(StringComparer.Ordinal) { "KVM_EXIT_IO", "KVM_EXIT_HLT", "KVM_EXIT_X86_RDMSR", "KVM_EXIT_X86_WRMSR", "KVM_EXIT_TPR_ACCESS", "KVM_EXIT_HYPERV", "KVM_EXIT_XEN", "KVM_EXIT_X86_BUS_LOCK" };

    public static void Clues(ImportResult r, int line, string cmd, string? exit)
    {
        var where = $"{Path.GetFileName(r.File)}:{line}";
        if (X86Only.Contains(cmd))
        {
            r.Host.SawArch(Domain.Events.Arch.X86_64, $"the x86 ioctl {cmd} ({where})");
        }
        else if (cmd.StartsWith("KVM_ARM_", StringComparison.Ordinal))
        {
            r.Host.SawArch(Domain.Events.Arch.Arm64, $"the arm64 ioctl {cmd} ({where})");
        }
        else if (exit is not null && X86Exits.Contains(exit))
        {
            r.Host.SawArch(Domain.Events.Arch.X86_64, $"the x86 exit {exit} of KVM_RUN ({where})");
        }
        else if (exit is "KVM_EXIT_ARM_NISV" or "KVM_EXIT_ARM_SEA")
        {
            r.Host.SawArch(Domain.Events.Arch.Arm64, $"the arm64 exit {exit} of KVM_RUN ({where})");
        }
    }
}
