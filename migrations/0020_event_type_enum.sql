-- An event row's type as a 4-byte enum instead of its name as text (14.5 bytes on average), and no
-- per-row recorded_at: it was written with every event and read by nothing (a keyed batch keeps its own
-- in batches.recorded_at, a run its created_at and updated_at). Together 16 bytes of every event row
-- after alignment (ADR 0017). SQL keeps writing the names: a quoted name is read as the enum's label.
-- A new event type needs a migration adding its label; StoredEventTypeTests fails until it has one.
create type event_type as enum (
    'host_described',
    'vm_created',
    'capability_enabled',
    'noncoherent_dma_changed',
    'vma_mapped',
    'vma_unmapped',
    'vma_protection_changed',
    'vma_advised',
    'vfio_region_attributes_set',
    'memslot_set',
    'guest_memfd_created',
    'guest_memfd_fallocated',
    'guest_memfd_closed',
    'memory_attributes_set',
    'guest_memfd_converted',
    'guest_faulted',
    'mmu_notifier_invalidated',
    'stage2_mapping_observed',
    'memory_fault_exit_observed',
    'memslot_decided',
    'fault_resolved',
    'stage2_unmapped',
    'stage2_write_protected',
    'ioctl_decided',
    'divergence_found');

-- The partial indexes name types in their predicates; they are made again over the enum, word for word
-- as migrations 0011 and 0018 made them.
drop index ix_events_input_ts;
drop index ix_events_marker_kinds;
drop index ix_events_marker_decisions;

alter table events
    alter column type type event_type using type::event_type,
    drop column recorded_at;

create index ix_events_input_ts on events (run_id, ts_ns)
    where ts_ns is not null and type not in ('memslot_decided', 'fault_resolved', 'stage2_unmapped', 'stage2_write_protected', 'ioctl_decided', 'divergence_found');

create index ix_events_marker_kinds on events (run_id, seq) include (type)
    where type in ('memslot_set', 'stage2_unmapped', 'memory_fault_exit_observed', 'divergence_found');

create index ix_events_marker_decisions on events (run_id, seq)
    where (type in ('memslot_decided', 'ioctl_decided') or (type = 'fault_resolved' and (case when payload is null then get_byte(fold, 2) in (4, 8, 7) else payload->>'outcome' in ('memory_fault_exit', 'error', 'sigbus') end)));
