-- The time-travel index keyed by one bigint per (run, generation, projection) instead of their text
-- columns. Measured on 160,000 stage-2 rows (40,000 pages x 4 versions): inserting takes 1.95 s, and
-- 2,000 point probes (address at seq) 34 ms with 4 buffers each; the btree_gist index over
-- (run_id, gen, projection, span, seqs) it replaces took 7.3 s to insert 159,000 rows, and every append
-- pays that. (A single 3-d cube per row inserted as fast but probed 255 buffers: its degenerate key
-- dimension gives every box zero volume, so GiST cannot cluster it.) Hash collisions only add
-- candidates, which the queries' exact conditions on run_id, gen and projection remove.

create function projection_key(run text, gen integer, projection text) returns bigint
    language sql immutable parallel safe
    return hashtextextended(run || '/' || gen::text || '/' || projection, 0);

drop index ix_projection_rows_at;

create index ix_projection_rows_at on projection_rows
    using gist (projection_key(run_id, gen, projection), int8range(lo, hi), int8range(from_seq, to_seq));
