-- The engine's folded state of a run (src/Projections/Serialization/EngineStateCodec.cs), saved after an
-- append so the next append to the run starts from it and folds only the inputs after `version`
-- instead of every stored input. One row per run, replaced by a newer one; a row of another format or
-- policy is ignored (the run is refolded). The events stay the record: deleting a row loses nothing.
create table engine_checkpoints (
    run_id    text        not null,
    version   bigint      not null,   -- the run's last seq the state folds through
    policy    text        not null,   -- the policy the state was folded under
    format    smallint    not null,   -- EngineStateCodec.Format
    state     bytea       not null,
    saved_at  timestamptz not null,
    constraint pk_engine_checkpoints primary key (run_id)
);
