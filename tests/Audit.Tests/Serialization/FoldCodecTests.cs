using Audit.Domain;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Projections.Serialization;
using Audit.Tests.Projections;

namespace Audit.Tests.Serialization;

/// <summary>The fold form of guest_faulted and fault_resolved (ADR 0007) decodes to what the payload decodes to, without the explanation.</summary>
public sealed class FoldCodecTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Every_fault_and_decision_of_a_random_run_decodes_as_its_payload_does(int seed)
    {
        var reader = new FoldCodec.Reader();
        var (faults, decisions, others) = (0, 0, 0);
        foreach (var e in RandomRun.Decided(seed, 600).Select(r => r.Event))
        {
            var fold = FoldCodec.Encode(e);
            if (e is not (GuestFaulted or FaultResolved))
            {
                Assert.Null(fold);
                others++;
                continue;
            }

            // What a rebuild read from the payload before: the event without its explanation.
            var withoutExplanation = e is FaultResolved f ? f with { Explanation = ValueList<ExplanationStep>.Empty } : e;
            var type = EventRegistry.For(e);
            var fromPayload = EventSerializer.Deserialize(type.StoredName, type.Version, EventSerializer.SerializePayload(withoutExplanation));
            Assert.Equal(fromPayload, reader.Decode(fold));
            _ = e is GuestFaulted ? faults++ : decisions++;
        }

        Assert.True(faults > 100 && decisions > 100 && others > 10, $"checked {faults} faults, {decisions} decisions, {others} others");
    }

    public static TheoryData<RunEvent> Edges() =>
    [
        new GuestFaulted(int.MaxValue, new Gpa(ulong.MaxValue), Access.Exec, FaultKind.AccessFlag, true, true, true, 1UL << 30, false),
        new GuestFaulted(-1, new Gpa(0), Access.Read, FaultKind.Permission, false, GuestPteDirty: true),
        new FaultResolved(long.MaxValue, FaultOutcome.Skipped, -14, null, "", ValueList<ExplanationStep>.Empty),
        new FaultResolved(1, FaultOutcome.Relaxed, 0, new Mapping(new Gpa(0xfff_ffff_f000), 1UL << 30, Stage2MemType.UC, false, Perms.R | Perms.W | Perms.X), "x86/6.18+proposal-ü" + new string('p', 300), ValueList<ExplanationStep>.Empty),
        new FaultResolved(7, FaultOutcome.Mapped, 0, new Mapping(new Gpa(0x8000_0000), 4096, Stage2MemType.NormalNC, null, Perms.None), "arm64/6.18", ValueList<ExplanationStep>.Empty),
    ];

    [Theory]
    [MemberData(nameof(Edges))]
    public void Extreme_and_optional_values_round_trip(RunEvent e)
    {
        var fold = FoldCodec.Encode(e)!;
        Assert.Equal(FoldCodec.Format, fold[0]);
        var reader = new FoldCodec.Reader();
        Assert.Equal(e, reader.Decode(fold));
        Assert.Equal(e, reader.Decode(fold)); // the second time through the policy cache
    }

    [Fact]
    public void A_decision_keeps_its_policy_when_the_next_one_names_another()
    {
        var reader = new FoldCodec.Reader();
        var a = new FaultResolved(1, FaultOutcome.MmioExit, 0, null, "arm64/6.18", ValueList<ExplanationStep>.Empty);
        var b = a with { Policy = "arm64/5.13" };
        Assert.Equal(a, reader.Decode(FoldCodec.Encode(a)));
        Assert.Equal(b, reader.Decode(FoldCodec.Encode(b)));
        Assert.Equal(a, reader.Decode(FoldCodec.Encode(a)));
    }

    [Fact]
    public void Malformed_values_are_refused_not_misread()
    {
        var fault = FoldCodec.Encode(new GuestFaulted(3, new Gpa(0x1000), Access.Write, FaultKind.Translation))!;
        var reader = new FoldCodec.Reader();
        Assert.Throws<InvalidDataException>(() => reader.Decode([.. fault, 0])); // a byte left over
        Assert.ThrowsAny<Exception>(() => reader.Decode(fault[..^1])); // cut short
        var badEnum = fault.ToArray();
        badEnum[^3] = 9; // access
        Assert.Throws<InvalidDataException>(() => reader.Decode(badEnum));
        var badTag = fault.ToArray();
        badTag[1] = 77;
        Assert.Throws<InvalidDataException>(() => reader.Decode(badTag));
        Assert.False(FoldCodec.Readable([(byte)(CompactRecord.Format + 1), 1, 0])); // format 2 is the compact record (ADR 0013)
    }
}
