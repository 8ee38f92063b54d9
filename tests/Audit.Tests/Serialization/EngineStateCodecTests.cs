using System.Reflection;
using Audit.Api.Features.Bench;
using Audit.Domain;
using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Projections.Serialization;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Serialization;

/// <summary>A run's folded state, saved and read back, decides every later input as the state that never left memory.</summary>
public sealed class EngineStateCodecTests
{
    public static TheoryData<string> Samples() => SampleRuns.Files();

    [Theory]
    [MemberData(nameof(Samples))]
    public void A_bundled_run_split_anywhere_decides_the_same_after_its_state_is_saved_and_read(string file)
    {
        var inputs = SampleRuns.Inputs(file);
        var policy = Policies.DefaultFor(inputs.OfType<HostDescribed>().First());
        for (var split = 0; split <= inputs.Count; split++)
        {
            AssertSplitDecidesTheSame(inputs, policy, split);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    public void A_synthetic_run_with_blocks_logging_and_invalidations_decides_the_same_after_a_save(int seed)
    {
        var inputs = SyntheticRun.Generate(20_000, seed).Select(x => x.Event).ToList();
        foreach (var split in new[] { 11, 500, 4_321, 12_000, 19_999 })
        {
            AssertSplitDecidesTheSame(inputs, Policies.Arm64_6_17, split);
        }
    }

    [Fact]
    public void Bytes_of_another_format_are_not_read()
    {
        var bytes = EngineStateCodec.Encode(Engine.Start(Policies.Arm64_6_17));
        bytes[0]++;
        Assert.Null(EngineStateCodec.Decode(bytes, Policies.Arm64_6_17));
    }

    [Fact]
    public void Damaged_bytes_are_not_read_so_the_run_is_refolded_instead()
    {
        var state = Engine.Start(Policies.Arm64_6_17);
        foreach (var e in SampleRuns.Inputs("gh200-gpu-passthrough.ndjson"))
        {
            Engine.Step(state, 1, e);
        }

        var bytes = EngineStateCodec.Encode(state);
        Assert.NotNull(EngineStateCodec.Decode(bytes, Policies.Arm64_6_17));
        Assert.Null(EngineStateCodec.Decode(bytes[..(bytes.Length / 2)], Policies.Arm64_6_17));
    }

    // The codec writes these members; a new one must be written too (and EngineStateCodec.Format bumped),
    // or a state read from a checkpoint would silently lack it.
    [Theory]
    [InlineData(typeof(RunState), "Arch DisabledQuirks EagerSplitSeq Gmem HasPrivateMemory Host HostSeq HostSplit HostWritten Kernel ManualProtectInitSetSeq MteEnabled MteSeq NoncoherentDma NoncoherentDmaSeq PageSize PendingMemoryFaults Poisoned Policy PrivateAttr Refusals SharedAttr Slots SlotsByGpa Stage2 VfioAttributes Vm VmSeq VmType Vmas")]
    [InlineData(typeof(GuestMemfdState), "Bindings ClosedSeq ConvertsInPlace Fd Flags Holes Seq Shared Size")]
    [InlineData(typeof(VmaState), "Backing Cacheable End Flags IsPfnOrMixedMap LinearMap Mapped MemType PgOff Prot ProtSeq Seq Start StructPage Text")]
    [InlineData(typeof(MemslotState), "AsId End Flags FlagsSeq Gpa GuestMemfd GuestMemfdOffset HasGmem Hva LogDirty Logging Range ReadOnly Seq Size Slot")]
    [InlineData(typeof(S2Entry), "DecidedSeq Gmem Granule Ipat MemType Perms Private")]
    public void The_codec_knows_every_member_of_the_state_it_saves(Type type, string known)
    {
        var members = type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Select(p => p.Name).Order(StringComparer.Ordinal);
        Assert.Equal(known, string.Join(' ', members));
    }

    private static void AssertSplitDecidesTheSame(IReadOnlyList<InputEvent> inputs, Policy policy, int split)
    {
        var straight = Engine.Start(policy);
        var seq = Fold(straight, inputs.Take(split), 0, null);
        var bytes = EngineStateCodec.Encode(straight);
        var read = EngineStateCodec.Decode(bytes, policy)!;
        Assert.Equal(bytes, EngineStateCodec.Encode(read));

        var expected = new List<DerivedEvent>();
        var actual = new List<DerivedEvent>();
        Fold(straight, inputs.Skip(split), seq, expected);
        Fold(read, inputs.Skip(split), seq, actual);
        Assert.Equal(expected, actual);
        Assert.Equal(EngineStateCodec.Encode(straight), EngineStateCodec.Encode(read));
    }

    private static long Fold(RunState state, IEnumerable<InputEvent> inputs, long seq, List<DerivedEvent>? derived)
    {
        foreach (var e in inputs)
        {
            var d = Engine.Step(state, ++seq, e);
            seq += d.Count;
            derived?.AddRange(d);
        }

        return seq;
    }
}
