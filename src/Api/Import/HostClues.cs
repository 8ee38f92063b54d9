using System.Globalization;
using System.Text.RegularExpressions;
using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Api.Import;

/// <summary>One thing a trace shows about its host, and where: "kvm_mmu_get_page of an indirect page (trace.txt:13)".</summary>
/// <param name="Strong">a weak clue (a direct shadow page, which TDP and a non-paging guest both make) gives way to a strong one.</param>
public sealed record Clue<T>(T Value, string Why, bool Strong = true);

/// <summary>
/// What the files of a run show about the host that recorded them, for a run without a HostDescribed
/// event: the architecture, the x86 vendor, TDP or shadow paging, and the kernel release. The first
/// strong clue of each kind wins; <see cref="Infer"/> fills what no file showed with a stated assumption.
/// </summary>
public sealed partial class HostClues
{
    public Clue<Arch>? Arch { get; private set; }
    public Clue<X86Vendor>? Vendor { get; private set; }
    public Clue<bool>? Tdp { get; private set; }
    public Clue<bool>? TdpMmu { get; private set; }
    public Clue<string>? Kernel { get; private set; }

    public bool Any => Arch is not null || Vendor is not null || Tdp is not null || Kernel is not null;

    public void SawArch(Arch arch, string why, bool strong = true) => Arch = Pick(Arch, new(arch, why, strong));

    public void SawVendor(X86Vendor vendor, string why, bool strong = true) => Vendor = Pick(Vendor, new(vendor, why, strong));

    public void SawTdp(bool tdp, string why, bool strong = true) => Tdp = Pick(Tdp, new(tdp, why, strong));

    public void SawTdpMmu(bool tdpMmu, string why) => TdpMmu = Pick(TdpMmu, new(tdpMmu, why));

    public void SawKernel(string release, string why) => Kernel = Pick(Kernel, new(release, why));

    /// <summary>Adds what another file showed (this file's clues first).</summary>
    public void Add(HostClues other)
    {
        Arch = Pick(Arch, other.Arch);
        Vendor = Pick(Vendor, other.Vendor);
        Tdp = Pick(Tdp, other.Tdp);
        TdpMmu = Pick(TdpMmu, other.TdpMmu);
        Kernel = Pick(Kernel, other.Kernel);
    }

    private static Clue<T>? Pick<T>(Clue<T>? had, Clue<T>? seen) =>
        had is null || (seen is { Strong: true } && !had.Strong) ? seen ?? had : had;

    [GeneratedRegex(@"\b(?<release>\d+\.\d+(?:\.\d+)?(?:[-+][\w.+~-]*)?)")]
    private static partial Regex ReleaseRx();

    /// <summary>`uname -a` ("Linux host 6.18.0-rc1 #1 SMP ... x86_64 GNU/Linux"), `uname -r`-style "release: 6.18.0" or /proc/version ("Linux version 6.18.0 (...)").</summary>
    [GeneratedRegex(@"^\s*#?\s*(?:Linux\s+(?:version\s+(?<release>\d+\.\d+\S*)|\S+\s+(?<release>\d+\.\d+\S*)\s+#.*?(?<arch>x86_64|aarch64|arm64)?(?:\s+GNU/Linux)?\s*$)|(?:os release|kernel release|release|uname -r|kernel)\s*[:=]\s*(?<release>\d+\.\d+\S*)\s*$)", RegexOptions.IgnoreCase)]
    private static partial Regex UnameRx();

    /// <summary>A line of capture metadata or a header that names the kernel (and maybe the machine); false when it does not.</summary>
    public bool TryUname(string line, string where)
    {
        var m = UnameRx().Match(line);
        if (!m.Success)
        {
            return false;
        }

        SawKernel(m.Groups["release"].Value, $"'{Short(line.Trim().TrimStart('#').Trim())}' ({where})");
        if (m.Groups["arch"].Success)
        {
            SawArch(m.Groups["arch"].Value == "x86_64" ? Domain.Events.Arch.X86_64 : Domain.Events.Arch.Arm64, $"the machine in '{Short(line.Trim())}' ({where})");
        }

        return true;
    }

    /// <summary>perf's "# ========" header: "# os release : 6.18.0", "# arch : x86_64", "# cpuid : GenuineIntel,6,85,7".</summary>
    public void PerfHeader(string line, string where)
    {
        var colon = line.IndexOf(':', StringComparison.Ordinal);
        if (!line.StartsWith('#') || colon < 0)
        {
            return;
        }

        var key = line[1..colon].Trim();
        var value = line[(colon + 1)..].Trim();
        switch (key)
        {
            case "os release" when ReleaseRx().Match(value) is { Success: true } r:
                SawKernel(r.Groups["release"].Value, $"perf header 'os release : {value}' ({where})");
                break;
            case "arch" when value is "x86_64" or "aarch64" or "arm64":
                SawArch(value == "x86_64" ? Domain.Events.Arch.X86_64 : Domain.Events.Arch.Arm64, $"perf header 'arch : {value}' ({where})");
                break;
            case "cpuid" or "cpudesc" or "vendor_id":
                if (value.Contains("GenuineIntel", StringComparison.Ordinal) || value.StartsWith("Intel", StringComparison.Ordinal))
                {
                    SawVendor(X86Vendor.Intel, $"perf header '{key} : {Short(value)}' ({where})");
                }
                else if (value.Contains("AuthenticAMD", StringComparison.Ordinal) || value.StartsWith("AMD", StringComparison.Ordinal))
                {
                    SawVendor(X86Vendor.Amd, $"perf header '{key} : {Short(value)}' ({where})");
                }

                break;
        }
    }

    /// <summary>The newest kernel release the model has a policy for (the assumption when no file names one).</summary>
    /// <remarks>Read off the policy ids ("arm64/6.18") so that it follows the policy table.</remarks>
    public static string NewestModelledRelease() =>
        Policies.All.SelectMany(p => ReleaseRx().Matches(p.Id).Select(m => KernelVersion.Parse(m.Value))).Max().ToString();

    /// <summary>
    /// The host these clues describe, with what it was inferred from and what was assumed; <paramref name="summary"/>
    /// says both in one line. Null when no file shows the architecture: nothing to infer from.
    /// </summary>
    public HostDescribed? Infer(out string summary)
    {
        summary = "";
        if (Arch is null)
        {
            return null;
        }

        var why = new List<string>();
        var assumed = new List<string>();
        var arch = Arch.Value;
        why.Add($"{Name(arch)}: {Arch.Why}");
        var kernel = Kernel?.Value ?? NewestModelledRelease();
        (Kernel is null ? assumed : why).Add(Kernel is null ? $"kernel {kernel}, the newest modelled release: no file names the kernel" : $"kernel {kernel}: {Kernel.Why}");
        X86Vendor? vendor = null;
        var caps = HostCaps.None;
        if (arch == Domain.Events.Arch.X86_64)
        {
            // KVM uses TDP wherever the CPU has EPT/NPT (the module default): the assumption without a clue.
            var tdp = Tdp?.Value ?? TdpMmu?.Value ?? true;
            if (Tdp is not null)
            {
                why.Add($"{(tdp ? "TDP" : "shadow paging")}: {Tdp.Why}");
            }
            else
            {
                assumed.Add("TDP, the module default: no file shows the paging mode");
            }

            vendor = Vendor?.Value;
            if (Vendor is not null)
            {
                why.Add($"{(vendor == X86Vendor.Amd ? "AMD SVM" : "Intel VMX")}: {Vendor.Why}");
            }
            else if (tdp)
            {
                assumed.Add("Intel VMX: no file shows the vendor");
                vendor = X86Vendor.Intel;
            }

            caps = new HostCaps(Tdp: tdp, TdpMmu: TdpMmu?.Value);
        }

        var text = string.Join("; ", why) + (assumed.Count > 0 ? (why.Count > 0 ? "; " : "") + "ASSUMED " + string.Join("; ", assumed) : "");
        var host = new HostDescribed(arch, kernel, vendor, 4096, caps, text);
        summary = $"host inferred from the trace (no HostDescribed event): {Describe(host)}, decided under {Policies.DefaultFor(host).Id}; {text}"
            + (assumed.Count > 0 ? " -- pass --policy if an assumption is wrong" : "");
        return host;
    }

    public static string Describe(HostDescribed h) =>
        $"{Name(h.Arch)} {h.Kernel}{(h.Vendor is { } v ? (v == X86Vendor.Amd ? " AMD" : " Intel") : "")}{(h.Arch == Domain.Events.Arch.X86_64 ? h.Caps.Tdp == false ? " shadow paging" : " TDP" : "")}";

    private static string Name(Arch a) => a == Domain.Events.Arch.Arm64 ? "arm64" : "x86_64";

    private static string Short(string s) => s.Length > 80 ? s[..80] + "..." : s;
}
