-- The rows that still hold (to_seq null) leave the box index for two btrees (ADR 0009). Their box
-- reaches 2^53, so each one widened the index entries it went under: on the 10M-event run, loading
-- its 1,389,166 open rows into a leaf with the box index took 28.8 s on one core, against 11.2 s with
-- the btree on (projection, lo); the 1,701,491 closed rows took 30.0 s. Open rows of one projection
-- never overlap (they are the map that holds now), so the row covering an address is the one with
-- the greatest lo at or below it: one btree probe. "Which open rows held at seq N" walks from_seq.
drop index ix_projection_rows_span;

create index ix_projection_rows_closed on projection_rows using gist (projection_span(lo, hi, from_seq, to_seq)) where to_seq is not null;
create index ix_projection_rows_open on projection_rows (projection, lo) where to_seq is null;
create index ix_projection_rows_open_from on projection_rows (projection, from_seq) where to_seq is null;

-- A rebuild's leaf that is not attached yet (a rebuild interrupted before this migration) carries the
-- old box index under the name the rebuild gives it: it changes with the parent, so attaching finds
-- indexes to match.
do $$
declare
    r record;
begin
    for r in select c.relname from pg_class c
             where c.relnamespace = current_schema()::regnamespace and c.relkind = 'r'
               and c.relname like 'projection\_rows\_%' and c.relname not like '%\_open'
               and not exists (select 1 from pg_inherits i where i.inhrelid = c.oid) loop
        execute format('drop index if exists %I', 'ix_' || r.relname);
        execute format('create index %I on %I using gist (projection_span(lo, hi, from_seq, to_seq)) where to_seq is not null', 'ix_' || r.relname, r.relname);
        execute format('create index %I on %I (projection, lo) where to_seq is null', 'ixo_' || r.relname, r.relname);
        execute format('create index %I on %I (projection, from_seq) where to_seq is null', 'ixf_' || r.relname, r.relname);
    end loop;
end
$$;
