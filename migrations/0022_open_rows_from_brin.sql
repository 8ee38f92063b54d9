-- The open rows by the seq they opened at, as a BRIN index instead of a btree (ADR 0017). Its one reader is
-- "every stage-2 row that held at seq N" without an address range (state and map of a whole run), which
-- wants the open rows opened by N. Open rows are never updated while they hold and a leaf takes its rows in
-- seq order, so from_seq follows the heap and a summary per 128 pages answers as well; the btree held an
-- entry of 28 bytes per open row and kept the pages of every row that had closed since (8-11 bytes of
-- every event at 10M).
drop index ix_projection_rows_open_from;

-- Each leaf gets its index under the name a new leaf gives it, attached or not (a rebuild's leaf that is not
-- attached yet); the parent's index then takes the attached ones as they are.
do $$
declare
    r record;
begin
    for r in select c.relname from pg_class c
             where c.relnamespace = current_schema()::regnamespace and c.relkind = 'r'
               and c.relname like 'projection\_rows\_%' and c.relname not like '%\_open' loop
        execute format('drop index if exists %I', 'ixf_' || r.relname);
        execute format('create index %I on %I using brin (from_seq) with (autosummarize = on) where to_seq is null', 'ixf_' || r.relname, r.relname);
    end loop;
end
$$;

create index ix_projection_rows_open_from on projection_rows using brin (from_seq) with (autosummarize = on) where to_seq is null;
