using System.Text;
using Audit.Domain;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Projections.Serialization;

namespace Audit.Tests.Serialization;

/// <summary>The serializer interns into and resolves from the step table it is handed, and only that one.</summary>
public sealed class StepTableSerializerTests
{
    private static readonly ExplanationStep Shared = new("x86.shadow.memtype", "shadow paging: write-back", ValueList.Of(new Fact("policy", "x86-shadow", null)));

    private static FaultResolved Decision(long input) => new(input, FaultOutcome.Mapped, 0,
        new Mapping(new Gpa(0x1000), 4096, Stage2MemType.WB, true, Perms.R), "x86-shadow", ValueList.Of(Shared));

    [Fact]
    public void A_repeated_step_is_written_as_its_id_only_with_a_writer_table_and_read_back_through_a_reader_table()
    {
        var writer = new StepTable(writer: true);
        var first = EventSerializer.SerializePayload(Decision(1), steps: writer);
        var second = EventSerializer.SerializePayload(Decision(3), steps: writer);
        var without = EventSerializer.SerializePayload(Decision(3));

        Assert.Contains("shadow paging", Encoding.UTF8.GetString(first), StringComparison.Ordinal);
        Assert.DoesNotContain("shadow paging", Encoding.UTF8.GetString(second), StringComparison.Ordinal);
        Assert.Contains("shadow paging", Encoding.UTF8.GetString(without), StringComparison.Ordinal);
        var (id, json) = Assert.Single(writer.TakeAdded());

        var reader = new StepTable(writer: false);
        Assert.Throws<StepMissingException>(() => EventSerializer.Deserialize("fault_resolved", 1, second, steps: reader));
        Assert.Throws<StepMissingException>(() => EventSerializer.Deserialize("fault_resolved", 1, second));
        reader.LoadJson(id, json);
        Assert.Equal(Decision(3), EventSerializer.Deserialize("fault_resolved", 1, second, steps: reader));
    }

    [Fact]
    public void Threads_serializing_with_their_own_tables_do_not_see_each_others_steps()
    {
        // With the table passed explicitly there is no ambient state for a continuation on another thread to miss or share.
        var tables = Enumerable.Range(0, 4).Select(_ => new StepTable(writer: true)).ToArray();
        Parallel.For(0, 4, t =>
        {
            for (var i = 0; i < 1_000; i++)
            {
                EventSerializer.SerializePayload(Decision(i), steps: tables[t]);
            }
        });
        Assert.All(tables, t => Assert.Equal(1, t.MaxId));
    }

    [Fact]
    public void A_step_object_seen_again_and_an_equal_copy_get_one_id()
    {
        // The engine cites one step object in many decisions; a reader's rebuilt copy is another object.
        var table = new StepTable(writer: true);
        var copy = Shared with { Facts = ValueList.Of(new Fact("policy", "x86-shadow", null)) };
        var other = Shared with { Text = "shadow paging: write-back, again" };

        Assert.Null(table.Intern(Shared));
        var id = table.Intern(Shared);
        Assert.NotNull(id);
        Assert.Equal(id, table.Intern(Shared));
        Assert.Equal(id, table.Intern(copy));
        Assert.Equal(id, table.Intern(copy));
        Assert.Null(table.Intern(other));
        Assert.NotEqual(id, table.Intern(other));
        Assert.Equal(2, table.TakeAdded().Count);
    }

    [Fact]
    public void A_step_seen_once_is_counted_but_not_kept()
    {
        // Most steps cite their fault and are seen once: kept, they lived as long as the run's table.
        var table = new StepTable(writer: true);
        var once = SeeOnce(table);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        Assert.False(once.TryGetTarget(out _));
        var again = new ExplanationStep("x86.shadow.memtype", "seen at 0x2a", ValueList.Of(new Fact("fault", "0x2a", 42)));
        Assert.NotNull(table.Intern(again));
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static WeakReference<ExplanationStep> SeeOnce(StepTable table)
    {
        var step = new ExplanationStep("x86.shadow.memtype", "seen at 0x2a", ValueList.Of(new Fact("fault", "0x2a", 42)));
        Assert.Null(table.Intern(step));
        return new WeakReference<ExplanationStep>(step);
    }
}
