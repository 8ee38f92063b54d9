-- The type of an event row as a 4-byte enum instead of its name as text (14.5 bytes on average): the
-- labels are the registry's stored names. Migration 0021 moves the rows into a table that stores the type
-- as this enum, in one rewrite (ADR 0017). SQL keeps writing the names: a quoted name is read as the label.
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
