-- Temporal projections: each row held over the seqs [from_seq, to_seq) (to_seq null while it
-- still holds), over an address interval [lo, hi) (gpa, hva or guest_memfd offset, by
-- projection), never one row per page. "Which row covers address A at seq N" is a GiST
-- search. A rebuild writes a new generation beside the active one and swaps when it has caught up.

create extension if not exists btree_gist with schema public;

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
    data        jsonb    not null,
    constraint pk_projection_rows primary key (run_id, gen, projection, lo, from_seq)
);

create index ix_projection_rows_at on projection_rows
    using gist (run_id, gen, projection, int8range(lo, hi), int8range(from_seq, to_seq));

-- Which generation readers use, per run; and how far each projection has folded the run.
create table projection_generations (
    run_id      text    not null primary key,
    active_gen  integer not null,
    building_gen integer
);

create table projection_checkpoints (
    run_id      text    not null,
    projection  text    not null,
    gen         integer not null,
    seq         bigint  not null,
    constraint pk_projection_checkpoints primary key (run_id, projection, gen)
);
