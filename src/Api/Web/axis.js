// The map's segmented axis. Guest physical space is sparse (a BAR at 256 MiB, RAM at 1 GiB, GPU memory at
// 4 TiB): each populated extent gets a segment, linear inside, of a width growing with the log of its size;
// the gaps between extents get a narrow fixed slot each. Positions are "units" in [0, 1]; the view is a
// window [v0, v1] of units that zoom and pan move.

const GAP = 0.035;

export class SegmentedAxis {
  /** @param {{lo:number, hi:number}[]} extents sorted, disjoint */
  constructor(extents) {
    const list = extents.length ? extents : [{ lo: 0, hi: 2 ** 32 }];
    const weights = list.map(e => Math.max(Math.log2(Math.max(e.hi - e.lo, 4096)) - 10, 1));
    const gaps = list.length - 1;
    const room = 1 - gaps * GAP;
    const total = weights.reduce((a, b) => a + b, 0);
    let u = 0;
    this.segments = list.map((e, i) => {
      const w = (weights[i] / total) * room;
      const s = { lo: e.lo, hi: e.hi, u0: u, u1: u + w };
      u += w + GAP;
      return s;
    });
  }

  /** Units of a gpa: linear inside a segment, squeezed into the slot of a gap, clamped outside. */
  unitOf(gpa) {
    const segs = this.segments;
    if (gpa <= segs[0].lo) return 0;
    for (let i = 0; i < segs.length; i++) {
      const s = segs[i];
      if (gpa < s.hi) {
        if (gpa >= s.lo) return s.u0 + ((gpa - s.lo) / (s.hi - s.lo)) * (s.u1 - s.u0);
        const p = segs[i - 1];
        return p.u1 + ((gpa - p.hi) / (s.lo - p.hi)) * (s.u0 - p.u1);
      }
    }
    return 1;
  }

  /** The gpa at a unit, or null inside a gap. */
  gpaAt(u) {
    for (const s of this.segments) {
      if (u >= s.u0 && u <= s.u1) return s.lo + ((u - s.u0) / (s.u1 - s.u0)) * (s.hi - s.lo);
    }
    return null;
  }

  /** The segment holding a gpa, if any. */
  segmentOf(gpa) {
    return this.segments.find(s => gpa >= s.lo && gpa < s.hi) ?? null;
  }
}

/** Extents as sorted, merged {lo, hi} from the timeline's memslot extents plus whatever else is mapped. */
export function mergeExtents(ranges) {
  const sorted = ranges.filter(r => r.hi > r.lo).sort((a, b) => a.lo - b.lo);
  const out = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.lo <= last.hi) last.hi = Math.max(last.hi, r.hi);
    else out.push({ lo: r.lo, hi: r.hi });
  }
  return out;
}
