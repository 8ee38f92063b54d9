-- The events table again, in one rewrite: its type as the enum of migration 0020, without recorded_at (written
-- with every event and read by nothing: a keyed batch keeps its own time in batches.recorded_at, a run its
-- created_at and updated_at), and its columns in the order a row packs tightest: the 8-byte seq and ts_ns
-- first, then the 4-byte type and 2-byte version, then the texts and byte strings, which need no alignment
-- (ADR 0017). In the order the table grew a fault row took 88 bytes and a decision 128; packed, 64 and 96.
-- A table's column order is fixed once made, so the rows move to a new table; nothing refers to events by
-- oid (no view, no foreign key). The partial indexes are made again word for word as 0011 and 0018 made
-- them: a quoted name in their predicates is now read as the enum's label.
alter table events rename to events_unpacked;
alter index pk_events rename to pk_events_unpacked;

create table events (
    seq      bigint     not null,
    ts_ns    bigint,
    type     event_type not null,
    version  smallint   not null,
    run_id   text       not null,
    payload  jsonb,
    fold     bytea,
    constraint pk_events primary key (run_id, seq)
);

insert into events (seq, ts_ns, type, version, run_id, payload, fold)
select seq, ts_ns, type::event_type, version, run_id, payload, fold from events_unpacked order by run_id, seq;

drop table events_unpacked;

create index ix_events_input_ts on events (run_id, ts_ns)
    where ts_ns is not null and type not in ('memslot_decided', 'fault_resolved', 'stage2_unmapped', 'stage2_write_protected', 'ioctl_decided', 'divergence_found');

create index ix_events_marker_kinds on events (run_id, seq) include (type)
    where type in ('memslot_set', 'stage2_unmapped', 'memory_fault_exit_observed', 'divergence_found');

create index ix_events_marker_decisions on events (run_id, seq)
    where (type in ('memslot_decided', 'ioctl_decided') or (type = 'fault_resolved' and (case when payload is null then get_byte(fold, 2) in (4, 8, 7) else payload->>'outcome' in ('memory_fault_exit', 'error', 'sigbus') end)));
