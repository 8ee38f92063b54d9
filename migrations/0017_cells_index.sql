-- The coarse stage-2 cells (ADR 0015) that hold at a seq, from the index alone: the map read them through
-- the small projections' btree, whose entries lead to the heap, and every version opened before the seq
-- was a heap visit (10,333 for the 144 cells of one level holding mid-way through the 10M-event run: 91 ms
-- with every page in shared buffers). The bounds on projection are the cells' names (Stage2Cells.Prefix),
-- written so a query naming one level implies them. Partitions.CellsIndexDefinition is the same definition.
create index ix_projection_rows_cells on projection_rows (projection, from_seq) include (to_seq, lo, hi, run_id, gen, data)
    where projection >= 'stage2cells/' and projection < 'stage2cells0';

-- A rebuild's leaf that is not attached yet gets it under the name the rebuild gives it, so attaching finds it.
do $$
declare
    r record;
begin
    for r in select c.relname from pg_class c
             where c.relnamespace = current_schema()::regnamespace and c.relkind = 'r'
               and c.relname like 'projection\_rows\_%' and c.relname not like '%\_open'
               and not exists (select 1 from pg_inherits i where i.inhrelid = c.oid) loop
        execute format('create index if not exists %I on %I (projection, from_seq) include (to_seq, lo, hi, run_id, gen, data) where projection >= ''stage2cells/'' and projection < ''stage2cells0''', 'ixc_' || r.relname, r.relname);
    end loop;
end
$$;
