-- The saved engine state (migration 0014) compressed with lz4 instead of pglz where the server was built with
-- lz4 (PostgreSQL 14 and later; the column keeps pglz elsewhere). A save of 170 kB took pglz a few ms of the
-- server's CPU, and eight writers saving at once slowed the appends of all of them (docs/benchmarks.md, notes
-- on the append p99 of 2026-12-04 23:05). Values stored before keep their compression until replaced.
do $$
begin
    if exists (select 1 from pg_settings where name = 'default_toast_compression' and 'lz4' = any(enumvals)) then
        alter table engine_checkpoints alter column state set compression lz4;
    end if;
end
$$;
