-- The time-travel index as one 3-d box per row instead of a multi-column btree_gist index:
-- (projection key, address span, seq span). Measured on 159,000 stage-2 rows: inserting takes
-- 1.6-2.9 s against 7.3 s with the btree_gist index (its text keys dominate), and every append pays it.
-- The key is a 52-bit hash of (run, generation, projection), exact in float8; hash collisions and the
-- inclusive box edges only add candidates, which the queries' exact conditions on the columns remove.
-- Addresses and seqs below 2^53 are exact in float8; above it rounding is monotonic, so no row that
-- covers a point is ever left out. cube lives in public (search paths of test schemas omit it).

create extension if not exists cube with schema public;

create function projection_key(run text, gen integer, projection text) returns float8
    language sql immutable parallel safe
    return (hashtextextended(run || '/' || gen::text || '/' || projection, 0) & 4503599627370495)::float8;

create function projection_box(run text, gen integer, projection text, lo bigint, hi bigint, from_seq bigint, to_seq bigint) returns public.cube
    language sql immutable parallel safe
    return public.cube(
        array[projection_key(run, gen, projection), lo::float8, from_seq::float8],
        array[projection_key(run, gen, projection), hi::float8, coalesce(to_seq, 9223372036854775807)::float8]);

-- The point (or span) a query asks about, in the same space.
create function projection_probe(run text, gen integer, projection text, lo bigint, hi bigint, seq_lo bigint, seq_hi bigint) returns public.cube
    language sql immutable parallel safe
    return public.cube(
        array[projection_key(run, gen, projection), lo::float8, seq_lo::float8],
        array[projection_key(run, gen, projection), hi::float8, seq_hi::float8]);

drop index ix_projection_rows_at;

create index ix_projection_rows_box on projection_rows
    using gist (projection_box(run_id, gen, projection, lo, hi, from_seq, to_seq));
