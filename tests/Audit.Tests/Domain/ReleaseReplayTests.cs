using Audit.Projections.Serialization;
using Audit.Domain;
using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Domain;

/// <summary>Every bundled run decides under every modelled release of its flavours, and the releases the rules name change the decisions they say.</summary>
public sealed class ReleaseReplayTests
{
    private static List<InputEvent> Inputs(string file) => SampleRuns.Inputs(file);

    private static List<DerivedEvent> Replay(IReadOnlyList<InputEvent> inputs, Policy policy)
    {
        var state = Engine.Start(policy);
        var derived = new List<DerivedEvent>();
        var seq = 0L;
        foreach (var e in inputs)
        {
            seq++;
            var d = Engine.Step(state, seq, e);
            seq += d.Count;
            derived.AddRange(d);
        }

        return derived;
    }

    public static TheoryData<string> Samples() => SampleRuns.Files();

    [Theory]
    [MemberData(nameof(Samples))]
    public void Every_bundled_run_replays_under_every_release_from_5_10_to_6_18(string file)
    {
        var inputs = Inputs(file);
        var arch = inputs.OfType<HostDescribed>().First().Arch;
        var flavours = Policies.Flavours.Where(f => (f == Flavour.Arm64) == (arch == Arch.Arm64)).ToList();
        Assert.Equal(KernelVersion.Oldest, Policies.Releases[0]);
        Assert.Equal(KernelVersion.Newest, Policies.Releases[^1]);
        foreach (var policy in flavours.SelectMany(f => Policies.Releases.Select(v => Policies.At(f, v))))
        {
            var derived = Replay(inputs, policy);
            var faults = derived.OfType<FaultResolved>().ToList();
            Assert.Equal(inputs.OfType<GuestFaulted>().Count(), faults.Count);
            Assert.All(faults, f => Assert.Equal(policy.Id, f.Policy));
            Assert.All(faults.SelectMany(f => f.Explanation), step => Assert.True(Rules.Find(step.Rule) is { } r && policy.Holds(r), $"{step.Rule} does not hold in {policy.Id}"));
        }
    }

    [Theory]
    [InlineData("arm64/6.8", "Device")]
    [InlineData("arm64/6.9", "NormalNC")]
    public void The_gpu_bar_turns_normal_nc_at_6_9_when_vm_allow_any_uncached_is_honoured(string policy, string memType)
    {
        var bar = BarDecision(Policies.Find(policy)!);
        Assert.Equal(memType, bar.Mapping!.MemType.ToString());
        Assert.Equal(memType == "NormalNC", bar.Explanation.Any(x => x.Rule == Rules.Arm64AllowAnyUncached.Id));
    }

    [Theory]
    [InlineData("arm64/6.16", "Device")]
    [InlineData("arm64/6.17", "Normal")]
    public void The_gpu_memory_turns_cacheable_at_6_17_with_cacheable_pfnmap(string policy, string memType)
    {
        var inputs = Inputs("gh200-gpu-passthrough.ndjson");
        var gpu = Replay(inputs, Policies.Find(policy)!).OfType<FaultResolved>().First(f => f.Mapping is { } m && m.Gpa.Value >= 0x40000000000);
        Assert.Equal(memType, gpu.Mapping!.MemType.ToString());
    }

    [Fact]
    public void Boundaries_of_arm64_include_every_release_a_rule_names()
    {
        var b = Policies.Boundaries(Flavour.Arm64);
        Assert.Equal(KernelVersion.Oldest, b[0]);
        foreach (var v in new[] { new KernelVersion(5, 14), new KernelVersion(6, 2), new KernelVersion(6, 9), new KernelVersion(6, 17), new KernelVersion(6, 18) })
        {
            Assert.Contains(v, b);
        }
    }

    [Theory]
    [InlineData("arm64/5.9", "outside the modelled releases 5.10-6.18")]
    [InlineData("arm64/6.19", "outside the modelled releases 5.10-6.18")]
    [InlineData("riscv/6.1", "FLAVOUR/VERSION")]
    [InlineData("arm64", "needs a kernel release")]
    public void A_policy_outside_the_modelled_releases_is_refused_naming_the_range(string id, string message)
    {
        Assert.False(Policies.TryParse(id, out _, out var error));
        Assert.Contains(message, error, StringComparison.Ordinal);
    }

    private static FaultResolved BarDecision(Policy policy) =>
        Replay(Inputs("gh200-gpu-passthrough.ndjson"), policy).OfType<FaultResolved>().First(f => f.Mapping is { } m && m.Gpa.Value is >= 0x10000000 and < 0x20000000);
}
