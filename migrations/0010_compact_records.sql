-- Compact records (ADR 0013): guest_faulted and fault_resolved are stored at version 2 as varints in
-- `fold` (src/Projections/Serialization/CompactRecord.cs) with a null payload; a decision keeps the ids
-- of its explanation's steps or step shapes (interned per run in explanation_steps beside the whole
-- steps of ADR 0004) and the values the shapes took out. On the 320k-event bench run a fault_resolved
-- row held 686 bytes of jsonb. Rows stored before this migration keep their payload and version 1,
-- and read as before.
alter table events alter column payload drop not null;
