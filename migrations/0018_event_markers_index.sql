-- The events the web timeline marks (memslot changes, unmaps, memory-fault exits, divergences, refusals),
-- and only those: a run of more than a million events is sliced by seq from its seqs and these rows
-- (EventDensity.ScanLimit) instead of a scan of all its events, 6.7 s on the 10M-event bench run.
--
-- The kinds the type alone names, nearly all of them unmaps, with the type included, so they are counted
-- from the index alone (EventDensity.KindMarkers):
create index ix_events_marker_kinds on events (run_id, seq) include (type)
    where type in ('memslot_set', 'stage2_unmapped', 'memory_fault_exit_observed', 'divergence_found');

-- The decisions a marker counts, whose outcome or errno is read from the row (EventDensity.DecisionMarkers,
-- written the same so the planner matches it); the codes 4, 8, 7 are RecordCodes.Outcome's memory_fault_exit,
-- error and sigbus at byte 2 of a compact fault_resolved.
create index ix_events_marker_decisions on events (run_id, seq)
    where (type in ('memslot_decided', 'ioctl_decided') or (type = 'fault_resolved' and (case when payload is null then get_byte(fold, 2) in (4, 8, 7) else payload->>'outcome' in ('memory_fault_exit', 'error', 'sigbus') end)));
