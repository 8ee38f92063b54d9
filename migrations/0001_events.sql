-- The event store: one stream per run, per-run sequence numbers 1..N without gaps.
-- Every table is keyed by run_id first so the store can be distributed by run (Citus).

create table runs (
    run_id        text        not null primary key,
    -- The last sequence number appended (Marten: mt_streams.version). Appends lock this row,
    -- so seqs of one run are assigned and committed in order, with no gaps.
    version       bigint      not null default 0,
    input_count   bigint      not null default 0,
    first_ts_ns   bigint,
    last_ts_ns    bigint,
    host          text,
    policy        text,
    created_at    timestamptz not null,
    updated_at    timestamptz not null
);

create table events (
    run_id        text        not null,
    seq           bigint      not null,
    type          text        not null,   -- stable snake_case name from the registry
    version       smallint    not null,   -- schema version of the payload
    ts_ns         bigint,                 -- the event's own time (ns), when the trace had one
    recorded_at   timestamptz not null,   -- when it was stored
    payload       jsonb       not null,
    constraint pk_events primary key (run_id, seq)
);

create index ix_events_ts on events (run_id, ts_ns) where ts_ns is not null;

-- Idempotent batches: a retried batch (same key) stores nothing and gets the first result back.
create table batches (
    run_id        text        not null,
    batch_key     text        not null,
    first_seq     bigint      not null,
    last_seq      bigint      not null,
    input_count   integer     not null,
    event_count   integer     not null,
    recorded_at   timestamptz not null,
    constraint pk_batches primary key (run_id, batch_key)
);
