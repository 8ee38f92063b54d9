-- The projections other than stage2 (memslots, VMAs, attributes, guest_memfd shareability) hold a few
-- rows per run, beside up to millions of stage-2 rows in the same leaf. The box index cannot tell them
-- apart, so "the VMAs at seq N" walked every row open at N (173,000 at the end of a 1M-event run: the
-- whole map took 200 ms). A partial btree over those rows answers them alone.

create index ix_projection_rows_small on projection_rows (projection, from_seq) where projection <> 'stage2';
