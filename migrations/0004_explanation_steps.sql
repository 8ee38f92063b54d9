-- Interned explanation steps, per run: a decision's payload carries a step's id where the step was
-- written before (most steps repeat: the memory-type rule of a policy, the level of a memslot, the pfn
-- kind of a VMA). Keyed by run first, read only with the run's own events.

create table explanation_steps (
    run_id   text    not null,
    step_id  integer not null,
    step     jsonb   not null,
    constraint pk_explanation_steps primary key (run_id, step_id)
);
