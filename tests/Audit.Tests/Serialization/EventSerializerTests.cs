using System.Text;
using Audit.Domain.Events;
using Audit.Projections.Serialization;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Serialization;

/// <summary>Every event type round-trips through the production serializer, checked against golden files.</summary>
public sealed class EventSerializerTests
{
    private static string GoldenDir => Path.Combine(Paths.Repo, "tests", "Audit.Tests", "Golden");

    public static TheoryData<int> InputLines()
    {
        var data = new TheoryData<int>();
        var lines = File.ReadAllLines(Path.Combine(GoldenDir, "input-events.ndjson"));
        for (var i = 0; i < lines.Length; i++)
        {
            data.Add(i + 1);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(InputLines))]
    public void Golden_input_line_round_trips_byte_for_byte(int line)
    {
        var text = File.ReadAllLines(Path.Combine(GoldenDir, "input-events.ndjson"))[line - 1];
        var read = NdjsonTraceReader.Read("golden", new StringReader(text));
        Assert.Null(read.Error);
        var e = Assert.Single(read.Events);

        var type = EventRegistry.For(e.Event);
        var payload = EventSerializer.SerializePayload(e.Event, e.Extras);
        Assert.Equal(text, EventSerializer.ToTraceLine(type.StoredName, e.TsNs, payload));

        // And the stored form reads back to an equal record.
        Assert.Equal(e.Event, EventSerializer.Deserialize(type.StoredName, type.Version, payload));
    }

    [Fact]
    public void Golden_files_cover_every_registered_event_type()
    {
        var inputs = File.ReadAllLines(Path.Combine(GoldenDir, "input-events.ndjson"))
            .SelectMany(l => NdjsonTraceReader.Read("golden", new StringReader(l)).Events)
            .Select(e => EventRegistry.For(e.Event).StoredName);
        var derived = File.ReadAllLines(Path.Combine(GoldenDir, "derived-events.tsv")).Select(l => l.Split('\t')[0]);
        var covered = inputs.Concat(derived).ToHashSet();
        Assert.Equal(EventRegistry.Types.Select(t => t.StoredName).Order(), covered.Order());
    }

    public static TheoryData<int> DerivedLines()
    {
        var data = new TheoryData<int>();
        var lines = File.ReadAllLines(Path.Combine(GoldenDir, "derived-events.tsv"));
        for (var i = 0; i < lines.Length; i++)
        {
            data.Add(i + 1);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(DerivedLines))]
    public void Golden_derived_payload_round_trips_byte_for_byte(int line)
    {
        var parts = File.ReadAllLines(Path.Combine(GoldenDir, "derived-events.tsv"))[line - 1].Split('\t');
        var e = EventSerializer.Deserialize(parts[0], 1, Encoding.UTF8.GetBytes(parts[1]));
        Assert.IsAssignableFrom<DerivedEvent>(e);
        Assert.Equal(parts[1], Encoding.UTF8.GetString(EventSerializer.SerializePayload(e)));
    }

    [Fact]
    public void Stored_names_are_snake_case_and_never_clr_names()
    {
        foreach (var t in EventRegistry.Types)
        {
            Assert.Matches("^[a-z][a-z0-9_]*$", t.StoredName);
            Assert.NotEqual(t.Clr.Name, t.StoredName);
            Assert.Equal(1, t.Version);
        }
    }

    [Fact]
    public void A_payload_newer_than_the_build_is_refused_with_a_clear_message()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => EventSerializer.Deserialize("guest_memfd_closed", 2, "{\"fd\":3}"u8));
        Assert.Contains("newer than this build", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("2026-03-02T10:00:00.001Z", 1_772_445_600_001_000_000L)]
    [InlineData("2026-03-02T11:00:00.000000001+01:00", 1_772_445_600_000_000_001L)]
    [InlineData("1970-01-01T00:00:00Z", 0L)]
    public void Rfc3339_times_become_nanoseconds_since_the_epoch(string text, long ns)
    {
        Assert.True(Timestamps.TryParse(text, out var parsed));
        Assert.Equal(ns, parsed);
    }

    [Fact]
    public void Wall_clock_times_print_as_rfc3339_and_monotonic_ones_as_integers()
    {
        Assert.Equal("2026-03-02T10:00:00.001Z", Timestamps.Format(1_772_445_600_001_000_000L));
        Assert.Equal("123456789", Timestamps.Format(123_456_789L));
    }
}
