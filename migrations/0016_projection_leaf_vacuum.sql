-- Projection leaves are update-heavy: every row an append opens is updated once more when a later
-- append closes it, and the old version stays dead until a vacuum. At the default threshold (a fifth
-- of the table dead) a leaf loaded at 50,000 events/s grew by half again in dead rows before autovacuum
-- came (ADR 0016). New leaves get these settings where they are created (Partitions.CreateDetachedAsync);
-- this gives them to the leaves that exist.
do $$
declare
    r record;
begin
    for r in select c.oid::regclass as t from pg_class c
             where c.relnamespace = current_schema()::regnamespace and c.relkind = 'r'
               and c.relname like 'projection\_rows\_%' loop
        execute format('alter table %s set (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 20000, autovacuum_vacuum_cost_delay = 0)', r.t);
    end loop;
end
$$;
