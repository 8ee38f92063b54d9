-- A projection row's trace times (from_ts, to_ts) were written with every row and never read: every
-- query and the web map ask by seq, and a time is turned into a seq first, from the events' time index
-- (migration 0011). They took 16 bytes of each row, and an open row paid 8 more for its null bitmap
-- (ADR 0017). Rows keep the seqs that bound them.
alter table projection_rows drop column from_ts, drop column to_ts;

-- A rebuild's leaf that is not attached yet (a rebuild interrupted before this migration) is shaped like
-- the parent was; it loses the same columns, so attaching it still matches.
do $$
declare
    r record;
begin
    for r in select c.oid::regclass as t from pg_class c
             where c.relnamespace = current_schema()::regnamespace and c.relkind = 'r'
               and c.relname like 'projection\_rows\_%'
               and not exists (select 1 from pg_inherits i where i.inhrelid = c.oid) loop
        execute format('alter table %s drop column if exists from_ts, drop column if exists to_ts', r.t);
    end loop;
end
$$;
