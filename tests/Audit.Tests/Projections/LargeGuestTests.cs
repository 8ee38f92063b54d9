using Audit.Domain;
using Audit.Domain.Addresses;
using Audit.Domain.Events;
using Audit.Domain.Model;
using Audit.Projections.Storage;
using Audit.Projections.Temporal;
using Audit.Tests.Infrastructure;

namespace Audit.Tests.Projections;

/// <summary>Rows grow with mappings, never with guest size.</summary>
public sealed class LargeGuestTests(SchemaFixture schema) : DatabaseTest(schema)
{
    [Fact]
    public async Task A_1_tib_guest_mapped_with_1g_and_2m_blocks_costs_one_row_per_mapping()
    {
        const ulong TiB = 1UL << 40, G = 1UL << 30, M2 = 2UL << 20;
        var inputs = new List<InputEvent>
        {
            new HostDescribed(Arch.Arm64, "6.17.2", null, 4096, new HostCaps(Fwb: true, CacheDic: true)),
            new VmCreated(VmType.Default, 48),
            new VmaMapped(HvaRange.FromSize(new(0x100000000000), TiB), Perms.R | Perms.W, VmaFlags.VM_SHARED | VmaFlags.VM_HUGETLB, HostMemType.MT_NORMAL, new Backing(BackingKind.Hugetlb, HostPageSize: G)),
            new MemslotSet(0, 0, new(0x10000000000), TiB, new(0x100000000000), MemslotFlags.None, null, null, 0),
            new VmaMapped(HvaRange.FromSize(new(0x300000000000), G), Perms.R | Perms.W, VmaFlags.VM_SHARED | VmaFlags.VM_HUGETLB, HostMemType.MT_NORMAL, new Backing(BackingKind.Hugetlb, HostPageSize: M2)),
            new MemslotSet(1, 0, new(0x40000000), G, new(0x300000000000), MemslotFlags.None, null, null, 0),
        };
        for (ulong b = 0; b < TiB / G; b++)
        {
            inputs.Add(new GuestFaulted(0, new(0x10000000000 + (b * G) + 0x1000), Access.Write, FaultKind.Translation));
        }

        for (ulong b = 0; b < G / M2; b++)
        {
            inputs.Add(new GuestFaulted(0, new(0x40000000 + (b * M2) + 0x1000), Access.Write, FaultKind.Translation));
        }

        var state = Engine.Start(Policies.Arm64_6_17);
        var batch = new List<NewEvent>();
        long seq = 0;
        foreach (var e in inputs)
        {
            batch.Add(new NewEvent(e));
            seq++;
            foreach (var d in Engine.Step(state, seq, e))
            {
                batch.Add(new NewEvent(d));
                seq++;
            }
        }

        var store = new EventStore(DataSource, TimeProvider.System, [new ProjectionStore(DataSource)]);
        await store.AppendAsync("tib", batch);

        var mappings = 1024 + 512;
        Assert.Equal(mappings, await ScalarAsync("select count(*) from projection_rows where run_id = 'tib' and projection = 'stage2'"));
        Assert.Equal(1024, await ScalarAsync("select count(*) from projection_rows where run_id = 'tib' and projection = 'stage2' and hi - lo = $1", (long)G));
        Assert.Equal(mappings + 4, await ScalarAsync("select count(*) from projection_rows where run_id = 'tib' and not starts_with(projection, 'stage2cells/')"));
        // The coarse cells (ADR 0015): neighbouring cells of the same kinds share a row, so 1 TiB of 2 MiB cells ends as a row or
        // two a level; each mapping that grew such a row closed the one before it, so the rows grow with the mappings.
        Assert.InRange(await ScalarAsync("select count(*) from projection_rows where run_id = 'tib' and starts_with(projection, 'stage2cells/') and to_seq is null"), Stage2Cells.LevelBits.Count, 2 * Stage2Cells.LevelBits.Count);
        Assert.InRange(await ScalarAsync("select count(*) from projection_rows where run_id = 'tib' and starts_with(projection, 'stage2cells/')"), Stage2Cells.LevelBits.Count, Stage2Cells.LevelBits.Count * mappings);

        // And the whole map at the end is one indexed read.
        var rows = await new TemporalQueries(DataSource).RowsAtAsync("tib", seq);
        Assert.Equal(mappings, rows.Count(r => r.Projection == "stage2"));
    }
}
