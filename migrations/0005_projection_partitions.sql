-- Projection rows partitioned by (run, generation): one table per run and generation, so a rebuild
-- loads its generation into a table of its own without indexes, builds the index once over the
-- loaded rows, attaches it, and drops the old generation as a table instead of deleting its rows.
-- Leaves are named projection_rows_<first 16 hex digits of md5(run_id)>_<gen> (Partitions.LeafName).
--
-- The time-travel index is one GiST over a 2-d box per row: x = the span [lo, hi], y = the seqs
-- [from_seq, to_seq] (open rows reach 2^53). Measured on 531,382 stage-2 rows of a 1M-event run:
-- building it takes 3.1 s (the GiST over bigint key, int8range, int8range took 13.9 s) and inserting
-- rows into an indexed table 8.2 s (19.1 s); the whole map over 10,000 intervals at a seq reads 288
-- index buffers in 10 ms. The key columns need no place in it: a leaf holds one run and generation.
-- Casting bigint to float8 is monotonic, so the inclusive float box always contains the exact one;
-- the queries recheck the exact half-open bounds.
--
-- No primary key: (projection, lo, from_seq) is unique by construction (the rows of one projection
-- never overlap at a seq), and the one lookup by it (closing a row) goes through the same index.

create function projection_span(lo bigint, hi bigint, from_seq bigint, to_seq bigint) returns box
    language sql immutable parallel safe
    return box(point(lo::float8, from_seq::float8), point(hi::float8, coalesce(to_seq, 9007199254740992)::float8));

alter table projection_rows rename to projection_rows_v1;
alter index ix_projection_rows_at rename to ix_projection_rows_v1_at;
alter table projection_rows_v1 rename constraint pk_projection_rows to pk_projection_rows_v1;

create table projection_rows (
    run_id      text     not null,
    gen         integer  not null,
    projection  text     not null,   -- stage2, memslots/<as>, vmas, attributes, gmem/<fd>
    lo          bigint   not null,   -- the span [lo, hi) of addresses
    hi          bigint   not null,
    from_seq    bigint   not null,   -- held over [from_seq, to_seq); to_seq null while it holds
    to_seq      bigint,
    from_ts     bigint,
    to_ts       bigint,
    data        jsonb    not null
) partition by range (run_id, gen);

create index ix_projection_rows_span on projection_rows using gist (projection_span(lo, hi, from_seq, to_seq));

do $$
declare
    r record;
begin
    for r in select distinct run_id, gen from projection_rows_v1 loop
        execute format('create table %I partition of projection_rows for values from (%L, %s) to (%L, %s)',
            'projection_rows_' || left(md5(r.run_id), 16) || '_' || r.gen, r.run_id, r.gen, r.run_id, r.gen + 1);
    end loop;
end
$$;

insert into projection_rows select * from projection_rows_v1;
drop table projection_rows_v1;
drop function projection_key(text, integer, text);
