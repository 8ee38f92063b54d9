-- The time index holds inputs only (ADR 0013). A decision is appended right after its input with the
-- input's time, so the first event after a time is always an input, and "the last seq at or before a
-- time" (EventStore.LastSeqAtOrBeforeAsync, the only reader of this index) finds it among the inputs.
-- On the 320k-event bench run the index over every timed event took 26.8 MB, over the inputs 13.0 MB.
-- The predicate is EventStore.InputTimes word for word: the planner uses a partial index only for a
-- query whose conditions imply its predicate.
create index ix_events_input_ts on events (run_id, ts_ns)
    where ts_ns is not null and type not in ('memslot_decided', 'fault_resolved', 'stage2_unmapped', 'stage2_write_protected', 'ioctl_decided', 'divergence_found');
drop index ix_events_ts;
