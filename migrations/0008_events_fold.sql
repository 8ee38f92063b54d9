-- The fold form of an event (ADR 0007): guest_faulted whole and fault_resolved without its
-- explanation, in a compact binary encoding (src/Projections/Serialization/FoldCodec.cs), written
-- by the same COPY that stores the payload. A rebuild reads it instead of printing each jsonb
-- payload back to text and parsing it: on a 10M-event run the server spent 15.7 s producing
-- `payload - 'explanation'` against 2.0 s for a bare count. Null for every other event and for
-- events stored before this migration: those are read from the payload, which stays the record.
alter table events add column fold bytea;
