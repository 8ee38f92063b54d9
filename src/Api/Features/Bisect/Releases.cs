using Audit.Domain.Model;

namespace Audit.Api.Features.Bisect;

/// <summary>A span of kernel releases decided by one policy: [From, To], both inclusive.</summary>
public sealed record Release(KernelVersion From, KernelVersion To, Policy Policy)
{
    /// <summary>`6.9-6.15`, or `6.8` for a single release.</summary>
    public override string ToString() => From == To ? From.ToString() : $"{From}-{To}";
}

/// <summary>
/// The one place bisect learns which releases differ: the versions of a run's flavour at which
/// some rule starts or stops holding (Policies.Boundaries), and the rules that change at a version.
/// </summary>
public static class Releases
{
    /// <summary>The oldest and newest kernels the model covers.</summary>
    public static KernelVersion Oldest => KernelVersion.Oldest;

    public static KernelVersion Newest => KernelVersion.Newest;

    public static string FlavourOf(Policy policy) => Policies.Name(policy.Flavour);

    /// <summary>
    /// Every release span of the policy's flavour, oldest first, covering Oldest..Newest. Spans are
    /// releases as merged: a run recorded under a proposal (arm64/6.17+memslot-flag) is bisected
    /// across the merged releases of its flavour.
    /// </summary>
    public static IReadOnlyList<Release> Of(Policy recorded)
    {
        var starts = Policies.Boundaries(recorded.Flavour);
        return starts.Select((from, i) => new Release(from, i + 1 < starts.Count ? starts[i + 1].Previous : Newest, Policies.At(recorded.Flavour, from))).ToList();
    }

    /// <summary>Ids of the flavour's rules whose kernel range starts or ends at <paramref name="version"/>.</summary>
    public static IReadOnlySet<string> ChangingAt(Flavour flavour, KernelVersion version) =>
        Rules.All.Where(r => (r.Since == version || r.Until == version) && r.AppliesTo(flavour, WhatIf.None)).Select(r => r.Id).ToHashSet(StringComparer.Ordinal);
}
