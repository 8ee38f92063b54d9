using System.Globalization;
using System.Text.RegularExpressions;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Model;

namespace Audit.Api.Features.Replay;

/// <summary>One `--set` edit: a target (host, a VMA by start, a memslot by number), a field, an operator and a value.</summary>
public sealed record WhatIfEdit(string Text, string Target, ulong? Key, string Field, string Op, string Value);

/// <summary>What an edit changed: the seqs of the inputs it rewrote and their recorded values (none: it changed nothing).</summary>
public sealed record AppliedEdit(string Edit, IReadOnlyList<long> Seqs, IReadOnlyList<string> Recorded);

/// <summary>
/// What-if edits of a run's inputs, for a replay only: `host.fwb=false`,
/// `vma[0xfffd00000000].flags+=VM_ALLOW_ANY_UNCACHED`, `vma[0x...].memType=MT_NORMAL_NC`,
/// `memslot[2].flags-=KVM_MEM_LOG_DIRTY_PAGES`. Pure: parse text, rewrite input events.
/// </summary>
public static partial class WhatIf
{
    private static readonly string[] HostCaps = ["fwb", "cacheDic", "selfSnoop", "tdp", "tdpMmu"];

    [GeneratedRegex(@"^(?<target>host|vma|memslot)(\[(?<key>[^\]]+)\])?\.(?<field>[A-Za-z]+)\s*(?<op>\+=|-=|=)\s*(?<value>.+)$")]
    private static partial Regex Syntax();

    public const string Help = "host.CAP=true|false (CAP: fwb, cacheDic, selfSnoop, tdp, tdpMmu), vma[START].flags(=|+=|-=)VM_..., vma[START].memType=MT_...|WB|WC|UC-|UC|WT, memslot[SLOT].flags(=|+=|-=)KVM_MEM_...";

    /// <summary>Parses one edit; the error names the text and what is wrong with it.</summary>
    public static bool TryParse(string text, out WhatIfEdit? edit, out string error)
    {
        edit = null;
        error = "";
        var m = Syntax().Match(text.Trim());
        if (!m.Success)
        {
            error = $"--set '{text}': expected TARGET.FIELD=VALUE, one of {Help}";
            return false;
        }

        var (target, field, op, value) = (m.Groups["target"].Value, m.Groups["field"].Value, m.Groups["op"].Value, m.Groups["value"].Value.Trim());
        ulong? key = null;
        if (m.Groups["key"].Success)
        {
            var k = m.Groups["key"].Value.Trim();
            if (target == "host" || !(target == "vma" ? Hex.TryParse(k, out var a) : ulong.TryParse(k, NumberStyles.None, CultureInfo.InvariantCulture, out a)))
            {
                error = $"--set '{text}': bad {target} index '{k}' ({(target == "vma" ? "a VMA's start address, e.g. vma[0xfffd00000000]" : target == "memslot" ? "a slot number, e.g. memslot[2]" : "host takes no index")})";
                return false;
            }

            key = a;
        }
        else if (target != "host")
        {
            error = $"--set '{text}': {target} needs an index: {(target == "vma" ? "vma[START]" : "memslot[SLOT]")}";
            return false;
        }

        var parsed = new WhatIfEdit(text.Trim(), target, key, field, op, value);
        if (Check(parsed) is { } problem)
        {
            error = problem;
            return false;
        }

        edit = parsed;
        return true;
    }

    /// <summary>Whether the field exists for the target and the value is one it can take.</summary>
    private static string? Check(WhatIfEdit e)
    {
        var what = $"--set '{e.Text}'";
        switch (e.Target, e.Field)
        {
            case ("host", _) when HostCaps.Contains(e.Field):
                return e.Op != "=" ? $"{what}: host.{e.Field} takes '=' only" : ParseBool(e.Value) is null ? $"{what}: '{e.Value}' is not true or false" : null;
            case ("host", _):
                return $"{what}: unknown host field '{e.Field}' (known: {string.Join(", ", HostCaps)})";
            case ("vma", "flags"):
                return FlagsError<VmaFlags>(what, e.Value);
            case ("vma", "memType"):
                return e.Op != "=" ? $"{what}: memType takes '=' only" : ParseMemType(e.Value) is null ? $"{what}: unknown memory type '{e.Value}' (known: {string.Join(", ", Enum.GetNames<HostMemType>().Select(n => n == "UC_MINUS" ? "UC-" : n))})" : null;
            case ("memslot", "flags"):
                return FlagsError<MemslotFlags>(what, e.Value);
            default:
                return $"{what}: unknown field '{e.Field}' of {e.Target} (vma: flags, memType; memslot: flags)";
        }
    }

    /// <summary>
    /// Applies the edits in order to a run's inputs. Every input the edit targets is rewritten: all
    /// VmaMapped events starting at the address, all MemslotSet calls of the slot, the HostDescribed.
    /// An edit that targets nothing is an error naming it.
    /// </summary>
    public static (List<(long Seq, InputEvent Input)> Inputs, List<AppliedEdit> Applied, string? Error) Apply(IReadOnlyList<WhatIfEdit> edits, IReadOnlyList<(long Seq, InputEvent Input)> inputs)
    {
        var current = inputs.ToList();
        var applied = new List<AppliedEdit>();
        foreach (var edit in edits)
        {
            var seqs = new List<long>();
            var recorded = new List<string>();
            var targeted = false;
            for (var i = 0; i < current.Count; i++)
            {
                if (Edit(edit, current[i].Input) is not { } changed)
                {
                    continue;
                }

                // Inputs the edit leaves as they were (a flag removed that was never set) are not listed.
                targeted = true;
                if (changed.Input != current[i].Input)
                {
                    seqs.Add(current[i].Seq);
                    recorded.Add(changed.Recorded);
                    current[i] = (current[i].Seq, changed.Input);
                }
            }

            if (!targeted)
            {
                return ([], [], $"--set '{edit.Text}': the run has no {Describe(edit)}");
            }

            applied.Add(new AppliedEdit(edit.Text, seqs, recorded));
        }

        return (current, applied, null);
    }

    private static string Describe(WhatIfEdit e) => e.Target switch
    {
        "host" => "HostDescribed event",
        "vma" => $"VmaMapped starting at {Hex.Format(e.Key!.Value)}",
        _ => $"MemslotSet of slot {e.Key}",
    };

    /// <summary>The edited event and the recorded value of the field, or null when the edit does not target this input.</summary>
    private static (InputEvent Input, string Recorded)? Edit(WhatIfEdit e, InputEvent input) => (e.Target, input) switch
    {
        ("host", HostDescribed h) => (h with { Caps = SetCap(h.Caps, e.Field, ParseBool(e.Value)!.Value) }, Show(CapOf(h.Caps, e.Field))),
        ("vma", VmaMapped v) when v.Range.Start.Value == e.Key && e.Field == "flags" =>
            (v with { Flags = Combine(v.Flags, e.Op, ParseFlags<VmaFlags>(e.Value)) }, Fmt.Flags(v.Flags)),
        ("vma", VmaMapped v) when v.Range.Start.Value == e.Key => (v with { MemType = ParseMemType(e.Value) }, Fmt.MemType(v.MemType)),
        ("memslot", MemslotSet m) when (ulong)m.Slot == e.Key =>
            (m with { Flags = Combine(m.Flags, e.Op, ParseFlags<MemslotFlags>(e.Value)) }, Fmt.Flags(m.Flags)),
        _ => null,
    };

    private static T Combine<T>(T flags, string op, T value)
        where T : struct, Enum
    {
        var (a, b) = (Convert.ToInt64(flags, CultureInfo.InvariantCulture), Convert.ToInt64(value, CultureInfo.InvariantCulture));
        var result = op switch { "+=" => a | b, "-=" => a & ~b, _ => b };
        return (T)Enum.ToObject(typeof(T), result);
    }

    private static bool? CapOf(HostCaps c, string field) => field switch
    {
        "fwb" => c.Fwb,
        "cacheDic" => c.CacheDic,
        "selfSnoop" => c.SelfSnoop,
        "tdp" => c.Tdp,
        _ => c.TdpMmu,
    };

    private static HostCaps SetCap(HostCaps c, string field, bool value) => field switch
    {
        "fwb" => c with { Fwb = value },
        "cacheDic" => c with { CacheDic = value },
        "selfSnoop" => c with { SelfSnoop = value },
        "tdp" => c with { Tdp = value },
        _ => c with { TdpMmu = value },
    };

    private static string Show(bool? b) => b switch { true => "true", false => "false", _ => "unrecorded" };

    private static bool? ParseBool(string s) => s.ToLowerInvariant() switch { "true" or "1" or "yes" => true, "false" or "0" or "no" => false, _ => null };

    private static HostMemType? ParseMemType(string s) =>
        s == "UC-" ? HostMemType.UC_MINUS : Enum.TryParse<HostMemType>(s, ignoreCase: false, out var t) && Enum.IsDefined(t) && !char.IsDigit(s[0]) ? t : null;

    /// <summary>Flag names as the kernel spells them, joined by '|' or ','.</summary>
    private static T ParseFlags<T>(string s)
        where T : struct, Enum =>
        (T)Enum.ToObject(typeof(T), Names(s).Aggregate(0L, (acc, n) => acc | Convert.ToInt64(Enum.Parse<T>(n), CultureInfo.InvariantCulture)));

    private static string? FlagsError<T>(string what, string s)
        where T : struct, Enum
    {
        var unknown = Names(s).Where(n => !Enum.GetNames<T>().Contains(n) || n == "None").ToList();
        return unknown.Count == 0 && Names(s).Length > 0 ? null
            : $"{what}: unknown flag(s) {string.Join(", ", unknown.DefaultIfEmpty("(none given)"))} (known: {string.Join(", ", Enum.GetNames<T>().Where(n => n != "None"))})";
    }

    private static string[] Names(string s) => s.Split('|', ',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
