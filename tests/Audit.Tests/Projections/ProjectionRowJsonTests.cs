using Audit.Domain;
using Audit.Domain.Events;
using Audit.Projections.Temporal;

namespace Audit.Tests.Projections;

/// <summary>
/// Typed projection rows read the rows stored while their fields were texts, and write the same texts
/// back (the web map groups rows by their data text): rows below were copied from a database an earlier
/// build wrote.
/// </summary>
public sealed class ProjectionRowJsonTests
{
    [Theory]
    [InlineData("""{"kind":"gap","lastChange":26,"lastChangeType":"Stage2Unmapped","outcome":"unmapped","causeSeq":25,"causeType":"VmaUnmapped","causeRule":"kvm_mmu_notifier_invalidate_range_start"}""")]
    [InlineData("""{"kind":"mapped","granule":4096,"memType":"NormalNC","ipat":true,"perms":"rw-","policy":"arm64/6.17","decidedAt":13,"inputSeq":12,"lastChange":13,"lastChangeType":"FaultResolved"}""")]
    public void A_stored_stage2_row_reads_typed_and_writes_the_same_text(string stored) =>
        Assert.Equal(stored, Roundtrip<Stage2Data>(stored));

    [Fact]
    public void A_stored_stage2_row_reads_its_permissions_memory_type_and_kind()
    {
        var d = RunProjections.De<Stage2Data>("""{"kind":"mapped","granule":2097152,"memType":"NormalNC","perms":"r-x","policy":"arm64/6.17","decidedAt":13,"inputSeq":12,"lastChange":13,"lastChangeType":"FaultResolved"}""");

        Assert.Equal((Stage2RowKind.Mapped, Stage2MemType.NormalNC, Perms.R | Perms.X), (d.Kind, d.MemType, d.Perms));
    }

    [Fact]
    public void Write_protections_stored_as_comma_separated_seqs_read_as_a_list_and_are_written_as_an_array()
    {
        const string stored = """{"kind":"mapped","granule":2097152,"memType":"Normal","perms":"r-x","policy":"arm64/6.17","decidedAt":13,"inputSeq":12,"lastChange":22,"lastChangeType":"Stage2WriteProtected","writeProtectedAt":"20,22","writeProtectRule":"kvm_arch_commit_memory_region.dirty_log"}""";

        var d = RunProjections.De<Stage2Data>(stored);

        Assert.Equal(ValueList.Of(20L, 22L), d.WriteProtectedAt);
        Assert.Equal(stored.Replace("\"20,22\"", "[20,22]", StringComparison.Ordinal), Ser(d));
        Assert.Equal(d, RunProjections.De<Stage2Data>(Ser(d)));
    }

    [Theory]
    [InlineData("""{"prot":"rw-","flags":"VM_SHARED|VM_PFNMAP|VM_IO|VM_ALLOW_ANY_UNCACHED","memType":"MT_DEVICE_nGnRnE","backing":"vfio","path":"/dev/vfio/devices/vfio0 (BAR0)","mapStart":"0xfffd00000000","mapSize":"0x1000000","seq":9,"protSeq":9}""")]
    [InlineData("""{"prot":"r--","flags":"none","backing":"file","path":"/usr/lib/x86_64-linux-gnu/libc.so.6","mapStart":"0x7f81ecd2e000","mapSize":"0x1e2000","seq":3,"protSeq":3}""")]
    public void A_stored_vma_row_reads_typed_and_writes_the_same_text(string stored)
    {
        Assert.Equal(stored, Roundtrip<VmaData>(stored));
        Assert.NotEqual(0UL, RunProjections.De<VmaData>(stored).MapSize);
    }

    [Theory]
    [InlineData("""{"slot":3,"asId":0,"hva":"0x7f81ec000000","flags":"KVM_MEM_GUEST_MEMFD","guestMemfd":7,"guestMemfdOffset":"0x0","seq":45,"flagsSeq":45}""")]
    [InlineData("""{"slot":0,"asId":0,"hva":"0xffff40000000","flags":"none","seq":4,"flagsSeq":4}""")]
    public void A_stored_memslot_row_reads_typed_and_writes_the_same_text(string stored) =>
        Assert.Equal(stored, Roundtrip<MemslotData>(stored));

    private static string Roundtrip<T>(string stored) => Ser(RunProjections.De<T>(stored));

    private static string Ser<T>(T data) => System.Text.Json.JsonSerializer.Serialize(data, RunProjections.Json);
}
