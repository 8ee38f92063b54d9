-- The events table again, its columns in the order a row packs tightest: the 8-byte seq and ts_ns first,
-- then the 4-byte type and 2-byte version, then the texts and byte strings, which need no alignment
-- (ADR 0017). In the order the table grew (run_id first), the run id left 2 bytes of padding before seq and
-- the version 2 more before ts_ns: a fault row of 68 bytes took 72, and a decision of 100 took 104; packed
-- they take 64 and 96, 8 bytes of every row. A table's column order is fixed once made, so the rows move to
-- a new table; nothing refers to events by oid (no view, no foreign key).
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
select seq, ts_ns, type, version, run_id, payload, fold from events_unpacked order by run_id, seq;

drop table events_unpacked;

create index ix_events_input_ts on events (run_id, ts_ns)
    where ts_ns is not null and type not in ('memslot_decided', 'fault_resolved', 'stage2_unmapped', 'stage2_write_protected', 'ioctl_decided', 'divergence_found');

create index ix_events_marker_kinds on events (run_id, seq) include (type)
    where type in ('memslot_set', 'stage2_unmapped', 'memory_fault_exit_observed', 'divergence_found');

create index ix_events_marker_decisions on events (run_id, seq)
    where (type in ('memslot_decided', 'ioctl_decided') or (type = 'fault_resolved' and (case when payload is null then get_byte(fold, 2) in (4, 8, 7) else payload->>'outcome' in ('memory_fault_exit', 'error', 'sigbus') end)));
