using Audit.Domain.Model;

namespace Audit.Api.Features.Bisect;

/// <summary>A span of kernel releases decided by one policy: [From, To], both inclusive.</summary>
public sealed record Release(KernelVersion From, KernelVersion To, Policy Policy);

/// <summary>
/// The one place bisect learns which releases differ: the versions of a run's flavour at which
/// some rule starts or stops holding, and the rules that change at a version. Everything else in
/// bisect goes through here, so a change of the policy model is a change of this file only.
/// </summary>
public static class Releases
{
    /// <summary>The oldest and newest kernels the model covers.</summary>
    public static readonly KernelVersion Oldest = new(5, 10), Newest = new(6, 18);

    /// <summary>The flavour of a policy id: its part before '/' (arm64, x86-vmx, x86-svm, x86-shadow).</summary>
    public static string FlavourOf(Policy policy) => policy.Id.Split('/', '+')[0];

    /// <summary>Every release span of the policy's flavour, oldest first, covering Oldest..Newest.</summary>
    public static IReadOnlyList<Release> Of(Policy recorded)
    {
        // Today a flavour's releases are the merged policies of Policies.All named flavour/VERSION
        // (what-if policies, with a '+', are not releases). The oldest one names the last release of
        // its bucket (arm64/5.13 is "<= 5.13"), so it starts at the oldest modelled kernel.
        var flavour = FlavourOf(recorded);
        var starts = Policies.All
            .Where(p => FlavourOf(p) == flavour && !p.Id.Contains('+'))
            .Select(p => (From: p.Id.Contains('/') ? KernelVersion.Parse(p.Id.Split('/')[1]) : Oldest, Policy: p))
            .OrderBy(x => x.From)
            .Select((x, i) => (From: i == 0 ? Oldest : x.From, x.Policy))
            .ToList();
        return starts.Select((x, i) => new Release(x.From, i + 1 < starts.Count ? Before(starts[i + 1].From) : Newest, x.Policy)).ToList();
    }

    /// <summary>Ids of the rules whose kernel range starts or ends at <paramref name="version"/> (none known until rules carry versions).</summary>
    public static IReadOnlySet<string> ChangingAt(KernelVersion version) => new HashSet<string>();

    /// <summary>The release before <paramref name="v"/>: 6.9 -> 6.8, 6.0 -> 5.19, 5.0 -> 4.20.</summary>
    public static KernelVersion Before(KernelVersion v) => v.Minor > 0
        ? new KernelVersion(v.Major, v.Minor - 1)
        : new KernelVersion(v.Major - 1, (v.Major - 1) switch { 5 => 19, 4 => 20, 3 => 19, _ => 99 });
}
