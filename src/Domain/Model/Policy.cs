using Audit.Domain.Events;

namespace Audit.Domain.Model;

/// <summary>How arm64 KVM decides cacheability (domain.md section 2).</summary>
public enum Arm64Cacheability
{
    /// <summary>&lt;= 5.13: a pfn without struct page is device.</summary>
    PfnValid,

    /// <summary>5.14 - 6.8: a pfn outside the linear map is device; pgprot ignored.</summary>
    LinearMap,

    /// <summary>6.9 - 6.16: as LinearMap, device in a VM_ALLOW_ANY_UNCACHED VMA -> NormalNC.</summary>
    AllowAnyUncached,

    /// <summary>6.17+: cacheable PFNMAP decided by the VMA's pgprot.</summary>
    CacheablePfnmap,
}

public enum X86Memtype { None, Vmx610, Vmx611, Vmx616, Svm, Shadow }

public enum WhatIf { None, MemslotFlag, ForceCheck }

/// <summary>One versioned model of a kernel's memory-attribute policy.</summary>
public sealed record Policy(
    string Id,
    Arch Arch,
    string Kernels,
    Arm64Cacheability Cacheability = Arm64Cacheability.CacheablePfnmap,
    X86Memtype X86 = X86Memtype.None,
    WhatIf WhatIf = WhatIf.None,
    bool GmemAbort = false)
{
    /// <summary>5.14+ maps PFNMAP VMAs with blocks; before, PFNMAP was always 4K.</summary>
    public bool PfnmapBlocks => Cacheability != Arm64Cacheability.PfnValid;

    /// <summary>From about 6.2 MTE is checked at memslot creation (VM_MTE_ALLOWED); before, VM_SHARED was refused.</summary>
    public bool MteCheckedAtMemslot => Cacheability is Arm64Cacheability.AllowAnyUncached or Arm64Cacheability.CacheablePfnmap;

    /// <summary>6.17+: dirty logging leaves device PFNMAP/MIXEDMAP mappings writable on read faults.</summary>
    public bool DirtyLogExemptsDevice => Cacheability == Arm64Cacheability.CacheablePfnmap;
}

public static class Policies
{
    public static readonly Policy Arm64_5_13 = new("arm64/5.13", Arch.Arm64, "<= 5.13", Arm64Cacheability.PfnValid);
    public static readonly Policy Arm64_5_14 = new("arm64/5.14", Arch.Arm64, "5.14 - 6.8", Arm64Cacheability.LinearMap);
    public static readonly Policy Arm64_6_9 = new("arm64/6.9", Arch.Arm64, "6.9 - 6.16", Arm64Cacheability.AllowAnyUncached);
    public static readonly Policy Arm64_6_17 = new("arm64/6.17", Arch.Arm64, "6.17", Arm64Cacheability.CacheablePfnmap);
    public static readonly Policy Arm64_6_18 = new("arm64/6.18", Arch.Arm64, "6.18+", Arm64Cacheability.CacheablePfnmap, GmemAbort: true);
    public static readonly Policy Arm64MemslotFlag = new("arm64/6.17+memslot-flag", Arch.Arm64, "what-if (series v4-v6, never merged)", Arm64Cacheability.CacheablePfnmap, WhatIf: WhatIf.MemslotFlag);
    public static readonly Policy Arm64ForceCheck = new("arm64/6.17+force-check", Arch.Arm64, "what-if (seed 000 sketch, never merged)", Arm64Cacheability.CacheablePfnmap, WhatIf: WhatIf.ForceCheck);
    public static readonly Policy X86Vmx_6_10 = new("x86-vmx/6.10", Arch.X86_64, "<= 6.10", X86: X86Memtype.Vmx610);
    public static readonly Policy X86Vmx_6_11 = new("x86-vmx/6.11", Arch.X86_64, "6.11 - 6.15", X86: X86Memtype.Vmx611);
    public static readonly Policy X86Vmx_6_16 = new("x86-vmx/6.16", Arch.X86_64, "6.16+", X86: X86Memtype.Vmx616);
    public static readonly Policy X86Svm = new("x86-svm", Arch.X86_64, "any", X86: X86Memtype.Svm);
    public static readonly Policy X86Shadow = new("x86-shadow", Arch.X86_64, "any", X86: X86Memtype.Shadow);

    public static IReadOnlyList<Policy> All { get; } =
    [
        Arm64_5_13, Arm64_5_14, Arm64_6_9, Arm64_6_17, Arm64_6_18, Arm64MemslotFlag, Arm64ForceCheck,
        X86Vmx_6_10, X86Vmx_6_11, X86Vmx_6_16, X86Svm, X86Shadow,
    ];

    public static Policy? Find(string id) => All.FirstOrDefault(p => p.Id == id);

    /// <summary>The policy matching the recorded host: arch, kernel version, vendor and TDP.</summary>
    public static Policy DefaultFor(HostDescribed host)
    {
        var v = KernelVersion.Parse(host.Kernel);
        if (host.Arch == Arch.Arm64)
        {
            return v < new KernelVersion(5, 14) ? Arm64_5_13
                : v < new KernelVersion(6, 9) ? Arm64_5_14
                : v < new KernelVersion(6, 17) ? Arm64_6_9
                : v < new KernelVersion(6, 18) ? Arm64_6_17
                : Arm64_6_18;
        }

        if (host.Caps.Tdp == false)
        {
            return X86Shadow;
        }

        if (host.Vendor == X86Vendor.Amd)
        {
            return X86Svm;
        }

        return v < new KernelVersion(6, 11) ? X86Vmx_6_10 : v < new KernelVersion(6, 16) ? X86Vmx_6_11 : X86Vmx_6_16;
    }
}

/// <summary>A kernel release as major.minor (patch ignored); unparsable text counts as the newest.</summary>
public readonly record struct KernelVersion(int Major, int Minor) : IComparable<KernelVersion>
{
    public static KernelVersion Newest => new(99, 0);

    public static KernelVersion Parse(string? text)
    {
        if (text is null)
        {
            return Newest;
        }

        var parts = text.Split('.', '-', '+');
        return parts.Length >= 2 && int.TryParse(parts[0], out var major) && int.TryParse(parts[1], out var minor)
            ? new KernelVersion(major, minor)
            : Newest;
    }

    public int CompareTo(KernelVersion other) => Major != other.Major ? Major.CompareTo(other.Major) : Minor.CompareTo(other.Minor);

    public static bool operator <(KernelVersion a, KernelVersion b) => a.CompareTo(b) < 0;
    public static bool operator >(KernelVersion a, KernelVersion b) => a.CompareTo(b) > 0;
    public static bool operator <=(KernelVersion a, KernelVersion b) => a.CompareTo(b) <= 0;
    public static bool operator >=(KernelVersion a, KernelVersion b) => a.CompareTo(b) >= 0;

    public override string ToString() => $"{Major}.{Minor}";
}
