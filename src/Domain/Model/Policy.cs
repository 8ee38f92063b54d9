using Audit.Domain.Events;

namespace Audit.Domain.Model;

/// <summary>How arm64 KVM decides cacheability (domain.md section 2); which one holds follows from the rules' versions.</summary>
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

/// <summary>The architecture and MMU a policy models; with a kernel release it makes a policy.</summary>
public enum Flavour { Arm64, X86Vmx, X86Svm, X86Shadow }

/// <summary>
/// One kernel release of one flavour (`arm64/6.5`, `x86-vmx/6.12`), optionally with a never-merged
/// proposal (`arm64/6.17+memslot-flag`). What it decides follows from the rules whose version ranges
/// hold at <see cref="Kernel"/>: a policy carries no behaviour of its own.
/// </summary>
public sealed record Policy(string Id, Flavour Flavour, KernelVersion Kernel, WhatIf WhatIf = WhatIf.None)
{
    public Arch Arch => Flavour == Flavour.Arm64 ? Arch.Arm64 : Arch.X86_64;

    /// <summary>Whether the rule is part of this release of this flavour.</summary>
    public bool Holds(Rule rule) => rule.HoldsIn(Kernel) && rule.AppliesTo(Flavour, WhatIf);

    public Arm64Cacheability Cacheability =>
        Holds(Rules.Arm64PfnValid) ? Arm64Cacheability.PfnValid
        : Holds(Rules.Arm64ForceNonCacheable) ? Arm64Cacheability.CacheablePfnmap
        : Holds(Rules.Arm64AllowAnyUncached) ? Arm64Cacheability.AllowAnyUncached
        : Arm64Cacheability.LinearMap;

    public X86Memtype X86 => Flavour switch
    {
        Flavour.X86Svm => X86Memtype.Svm,
        Flavour.X86Shadow => X86Memtype.Shadow,
        Flavour.X86Vmx when Holds(Rules.X86VmxGuestMtrr) => X86Memtype.Vmx610,
        Flavour.X86Vmx when Holds(Rules.X86VmxIgnoreGuestPatQuirk) => X86Memtype.Vmx616,
        Flavour.X86Vmx => X86Memtype.Vmx611,
        _ => X86Memtype.None,
    };

    /// <summary>5.14+ maps PFNMAP VMAs with blocks; before, PFNMAP was always 4K.</summary>
    public bool PfnmapBlocks => Holds(Rules.Arm64VmaPageShift);

    /// <summary>6.2+: MTE is checked at memslot creation by VM_MTE_ALLOWED; before, VM_SHARED was refused.</summary>
    public bool MteCheckedAtMemslot => Holds(Rules.Arm64SlotMte);

    public bool GmemAbort => Holds(Rules.Arm64GmemAbort);

    public override string ToString() => Id;
}

public static class Policies
{
    /// <summary>The ids named before policies became releases; they stay valid.</summary>
    public static readonly Policy Arm64_5_13 = At(Flavour.Arm64, new(5, 13));
    public static readonly Policy Arm64_5_14 = At(Flavour.Arm64, new(5, 14));
    public static readonly Policy Arm64_6_9 = At(Flavour.Arm64, new(6, 9));
    public static readonly Policy Arm64_6_17 = At(Flavour.Arm64, new(6, 17));
    public static readonly Policy Arm64_6_18 = At(Flavour.Arm64, new(6, 18));
    public static readonly Policy Arm64MemslotFlag = At(Flavour.Arm64, new(6, 17), WhatIf.MemslotFlag);
    public static readonly Policy Arm64ForceCheck = At(Flavour.Arm64, new(6, 17), WhatIf.ForceCheck);
    public static readonly Policy X86Vmx_6_10 = At(Flavour.X86Vmx, new(6, 10));
    public static readonly Policy X86Vmx_6_11 = At(Flavour.X86Vmx, new(6, 11));
    public static readonly Policy X86Vmx_6_16 = At(Flavour.X86Vmx, new(6, 16));
    public static readonly Policy X86Svm = At(Flavour.X86Svm, KernelVersion.Newest);
    public static readonly Policy X86Shadow = At(Flavour.X86Shadow, KernelVersion.Newest);

    /// <summary>The named policies (documented in docs/rules.md); any other release is reached by <see cref="Find"/>.</summary>
    public static IReadOnlyList<Policy> All { get; } =
    [
        Arm64_5_13, Arm64_5_14, Arm64_6_9, Arm64_6_17, Arm64_6_18, Arm64MemslotFlag, Arm64ForceCheck,
        X86Vmx_6_10, X86Vmx_6_11, X86Vmx_6_16, X86Svm, X86Shadow,
    ];

    public static IReadOnlyList<Flavour> Flavours { get; } = [Flavour.Arm64, Flavour.X86Vmx, Flavour.X86Svm, Flavour.X86Shadow];

    public static string Name(Flavour f) => f switch
    {
        Flavour.Arm64 => "arm64",
        Flavour.X86Vmx => "x86-vmx",
        Flavour.X86Svm => "x86-svm",
        _ => "x86-shadow",
    };

    private static string Suffix(WhatIf w) => w switch
    {
        WhatIf.MemslotFlag => "+memslot-flag",
        WhatIf.ForceCheck => "+force-check",
        _ => "",
    };

    /// <summary>The policy of one release of one flavour.</summary>
    public static Policy At(Flavour flavour, KernelVersion kernel, WhatIf whatIf = WhatIf.None) =>
        new($"{Name(flavour)}/{kernel}{Suffix(whatIf)}", flavour, kernel, whatIf);

    /// <summary>The policy an id names, or null; see <see cref="TryParse"/> for why not.</summary>
    public static Policy? Find(string id) => TryParse(id, out var p, out _) ? p : null;

    /// <summary>
    /// Parses `flavour/major.minor[+proposal]` (`arm64/6.5`, `x86-vmx/6.12`, `arm64/6.17+memslot-flag`);
    /// a bare `x86-svm` or `x86-shadow` (their ids before releases) is the newest release.
    /// </summary>
    public static bool TryParse(string id, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Policy? policy, out string error)
    {
        policy = null;
        var text = id.Trim();
        var whatIf = WhatIf.None;
        foreach (var w in new[] { WhatIf.MemslotFlag, WhatIf.ForceCheck })
        {
            if (text.EndsWith(Suffix(w), StringComparison.Ordinal))
            {
                whatIf = w;
                text = text[..^Suffix(w).Length];
            }
        }

        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var name = slash < 0 ? text : text[..slash];
        var flavour = Flavours.Cast<Flavour?>().FirstOrDefault(f => Name(f!.Value) == name);
        if (flavour is null)
        {
            error = $"unknown policy '{id}': a policy is FLAVOUR/VERSION with FLAVOUR one of {string.Join(", ", Flavours.Select(Name))} and VERSION a kernel release {KernelVersion.Oldest}-{KernelVersion.Newest} (e.g. arm64/6.5, x86-vmx/6.12)";
            return false;
        }

        if (whatIf != WhatIf.None && flavour != Flavour.Arm64)
        {
            error = $"unknown policy '{id}': the {Suffix(whatIf)[1..]} proposal is arm64 only";
            return false;
        }

        if (slash < 0)
        {
            if (flavour is Flavour.X86Svm or Flavour.X86Shadow)
            {
                policy = At(flavour.Value, KernelVersion.Newest, whatIf);
                error = "";
                return true;
            }

            error = $"policy '{id}' needs a kernel release: {name}/VERSION with VERSION {KernelVersion.Oldest}-{KernelVersion.Newest}";
            return false;
        }

        if (!KernelVersion.TryParse(text[(slash + 1)..], out var kernel))
        {
            error = $"policy '{id}': '{text[(slash + 1)..]}' is not a kernel release (major.minor, e.g. 6.12)";
            return false;
        }

        if (kernel < KernelVersion.Oldest || kernel > KernelVersion.Newest)
        {
            error = $"policy '{id}': kernel {kernel} is outside the modelled releases {KernelVersion.Oldest}-{KernelVersion.Newest}";
            return false;
        }

        policy = At(flavour.Value, kernel, whatIf);
        error = "";
        return true;
    }

    /// <summary>Every modelled release, oldest first.</summary>
    public static IReadOnlyList<KernelVersion> Releases { get; } = KernelVersion.Range(KernelVersion.Oldest, KernelVersion.Newest);

    /// <summary>
    /// The releases at which some rule of the flavour starts or stops holding, oldest first, starting
    /// with the oldest modelled release: replaying at these (and only these) shows every behaviour change.
    /// </summary>
    public static IReadOnlyList<KernelVersion> Boundaries(Flavour flavour) =>
        Rules.All.Where(r => r.AppliesTo(flavour, WhatIf.None))
            .SelectMany(r => new[] { r.Since, r.Until })
            .OfType<KernelVersion>()
            .Append(KernelVersion.Oldest)
            .Where(v => v >= KernelVersion.Oldest && v <= KernelVersion.Newest)
            .Distinct()
            .Order()
            .ToList();

    /// <summary>
    /// The policy matching the recorded host: arch, vendor and TDP give the flavour, the kernel the release
    /// (clamped to the modelled releases; an unparsable kernel counts as the newest).
    /// </summary>
    public static Policy DefaultFor(HostDescribed host) => At(FlavourOf(host), Clamp(KernelVersion.Parse(host.Kernel)));

    public static Flavour FlavourOf(HostDescribed host) =>
        host.Arch == Arch.Arm64 ? Flavour.Arm64
        : host.Caps.Tdp == false ? Flavour.X86Shadow
        : host.Vendor == X86Vendor.Amd ? Flavour.X86Svm
        : Flavour.X86Vmx;

    public static KernelVersion Clamp(KernelVersion v) =>
        v < KernelVersion.Oldest ? KernelVersion.Oldest : v > KernelVersion.Newest ? KernelVersion.Newest : v;
}
