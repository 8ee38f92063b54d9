using Audit.Domain;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Projections.Storage;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Storage;

/// <summary>
/// Explanation steps of a jsonb decision (version 1; memslot and ioctl decisions) written the second time are stored once per
/// run and read back whole, by any store instance. Fault decisions are compact records now (CompactRecordStorageTests).
/// </summary>
public sealed class StepInterningTests(SchemaFixture schema) : DatabaseTest(schema)
{
    private static readonly ExplanationStep Shared = new("x86.shadow.memtype", "shadow paging: SPTEs carry no memtype, write-back; the guest PAT is ignored", ValueList.Of(new Fact("policy", "x86-shadow", null)));

    private static NewEvent Decision(long input, ulong gpa) => new(new IoctlDecided(input, "KVM_SET_MEMORY_ATTRIBUTES", 0, 0, "x86-shadow",
        ValueList.Of(
            new ExplanationStep("x86.make_spte.perms", $"read fault at {Hex.Format(gpa)}", ValueList.Of(new Fact("fault", $"read translation fault at {Hex.Format(gpa)}", input))),
            Shared)));

    private static NewEvent Fault(ulong gpa) => new(new GuestFaulted(0, new Gpa(gpa), Access.Read, FaultKind.Translation));

    [Fact]
    public async Task A_repeated_step_is_stored_once_and_every_decision_reads_back_equal()
    {
        var written = new List<RunEvent>();
        var writer = Store();
        for (var i = 0; i < 5; i++)
        {
            var batch = new List<NewEvent> { Fault(0x1000UL * (ulong)(i + 1)), Decision((i * 2) + 1, 0x1000UL * (ulong)(i + 1)) };
            written.AddRange(batch.Select(b => b.Event));
            Assert.Equal(AppendStatus.Appended, (await writer.AppendAsync("steps", batch)).Status);
        }

        // The shared step: inline the first time, interned from the second on; the unique ones stay inline.
        Assert.Equal(1, await ScalarAsync("select count(*) from explanation_steps where run_id = $1", "steps"));
        Assert.Equal(4, await ScalarAsync("select count(*) from events where run_id = $1 and type = 'ioctl_decided' and jsonb_typeof(payload->'explanation'->1) = 'number'", "steps"));

        // Another store (another process) reads them whole, and its appends continue the numbering.
        var reader = Store();
        var read = new List<RunEvent>();
        await foreach (var e in reader.ReadAsync("steps"))
        {
            read.Add(e.Event);
        }

        Assert.Equal(written, read);
        var point = await reader.GetAsync("steps", [10L]);
        Assert.Equal(written[9], point[10].Event);

        var other = new ExplanationStep("x86.kvm_mmu_hugepage_adjust", "level 4K: host mapping 4K", ValueList.Of(new Fact("memslot", "slot 0", 3)));
        NewEvent WithOther(long input) => new(((IoctlDecided)Decision(input, 0x9000).Event) with { Explanation = ValueList.Of(Shared, other) });
        await reader.AppendAsync("steps", [WithOther(11), WithOther(11)]);
        await writer.AppendAsync("steps", [WithOther(11)]);
        Assert.Equal(2, await ScalarAsync("select count(*) from explanation_steps where run_id = $1", "steps"));
        var last = new List<RunEvent>();
        await foreach (var e in Store().ReadAsync("steps", fromSeq: 11))
        {
            last.Add(e.Event);
        }

        Assert.Equal(3, last.Count);
        Assert.All(last, e => Assert.Equal(ValueList.Of(Shared, other), ((IoctlDecided)e).Explanation));
    }
}
