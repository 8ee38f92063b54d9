-- The events the web timeline marks (memslot changes, unmaps, memory-fault exits, divergences, refusals),
-- and only those: a run of more than a million events is sliced by seq from its seqs and these rows
-- (EventDensity.ScanLimit) instead of a scan of all its events, 6.7 s on the 10M-event bench run. The
-- predicate is EventDensity.MarkerPredicate, written the same so the planner matches it; the codes 4, 8, 7
-- are RecordCodes.Outcome's memory_fault_exit, error and sigbus at byte 2 of a compact fault_resolved.
create index ix_events_markers on events (run_id, seq)
    where (type in ('memslot_set', 'stage2_unmapped', 'memory_fault_exit_observed', 'divergence_found', 'memslot_decided', 'ioctl_decided') or (type = 'fault_resolved' and (case when payload is null then get_byte(fold, 2) in (4, 8, 7) else payload->>'outcome' in ('memory_fault_exit', 'error', 'sigbus') end)));
