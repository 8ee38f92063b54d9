using System.Text;
using Audit.Domain;
using Audit.Domain.Events;
using Audit.Projections.Serialization;
using Audit.Tests.Projections;

namespace Audit.Tests.Serialization;

/// <summary>The one-pass decoder of guest_faulted and fault_resolved agrees with the general codec, and declines what it does not expect.</summary>
public sealed class HotPayloadTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Decodes_every_fault_of_a_random_run_as_the_general_codec_does(int seed)
    {
        var checkedFaults = 0;
        foreach (var recorded in RandomRun.Decided(seed, 600).Where(r => r.Event is GuestFaulted or FaultResolved))
        {
            // A rebuild reads decisions without their explanation.
            var e = recorded.Event is FaultResolved f ? f with { Explanation = new ValueList<ExplanationStep>([]) } : recorded.Event;
            var type = EventRegistry.For(e);
            var payload = EventSerializer.SerializePayload(e);

            // The text jsonb gives back: keys reordered by length, a space after ':' and ','.
            var spaced = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(payload).Replace(":", ": ").Replace(",", ", "));
            foreach (var bytes in new[] { payload, spaced })
            {
                var general = EventSerializer.Deserialize(type.StoredName, type.Version, bytes, hotPath: false);
                Assert.Equal(general, EventSerializer.Deserialize(type.StoredName, type.Version, bytes));
                Assert.Equal(e, general);
            }

            checkedFaults++;
        }

        Assert.True(checkedFaults > 100, $"only {checkedFaults} faults checked");
    }

    [Theory]
    [InlineData("guest_faulted", """{"gpa": "0x1000", "vcpu": 1, "access": "write", "later": 1}""")]
    [InlineData("guest_faulted", """{"vcpu": 1, "access": "write"}""")]
    [InlineData("fault_resolved", """{"errno": 0, "policy": "arm64/6.17", "outcome": "mapped", "inputSeq": 4, "explanation": []}""")]
    public void Declines_what_it_does_not_expect_and_the_general_codec_answers(string type, string json)
    {
        var version = EventRegistry.FindStoredName(type)!.Version;
        var bytes = Encoding.UTF8.GetBytes(json);
        Exception? general = null;
        RunEvent? expected = null;
        try
        {
            expected = EventSerializer.Deserialize(type, version, bytes, hotPath: false);
        }
        catch (Exception ex)
        {
            general = ex;
        }

        if (general is null)
        {
            Assert.Equal(expected, EventSerializer.Deserialize(type, version, bytes));
        }
        else
        {
            Assert.Equal(general.GetType(), Assert.ThrowsAny<Exception>(() => EventSerializer.Deserialize(type, version, bytes)).GetType());
        }
    }
}
