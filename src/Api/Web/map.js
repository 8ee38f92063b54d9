// The address-space map: memslots as a band, stage-2 blocks coloured by memory type, the private/shared
// overlay, gaps as gaps, on a canvas. Blocks are sorted and disjoint, so drawing starts at the first visible
// one (binary search) and blocks that fall on a pixel already painted the same colour are skipped: 100,000
// intervals cost a few milliseconds per frame. The blocks come at the map's level of detail: windows()
// names the visible parts of the space and their pixels, and the server answers one span per pixel, so a
// frame's data is O(screen width) whatever the run holds; a view change asks again (onView) and the last
// answer stays drawn meanwhile.

import { fitCanvas, hex, size, typeColour, typeName } from './format.js';

const MIN_BLOCK_PX = 2;
const LANES = { axis: 16, slotY: 20, slotH: 22, s2Y: 50, s2H: 120, cmpH: 50, privH: 12, ticks: 18 };

/** First index whose block ends after gpa (blocks sorted by lo, disjoint). */
function firstEndingAfter(blocks, gpa) {
  let lo = 0, hi = blocks.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (blocks[mid].hi <= gpa) lo = mid + 1; else hi = mid;
  }
  return lo;
}

export class AddressMap {
  constructor(root, { onSelect }) {
    this.root = root;
    this.canvas = root.querySelector('canvas');
    this.tooltip = root.querySelector('#tooltip');
    this.ctx = this.canvas.getContext('2d');
    this.onSelect = onSelect;
    this.axis = null;
    this.view = { v0: 0, v1: 1 };
    this.blocks = [];
    this.slots = [];
    this.overlay = [];
    this.marks = [];
    this.side = false;
    this.selected = null;
    this.band = null;
    this.frame = 0;
    this.onPainted = null;
    this.onView = null;
    this.loaded = [];
    this.profile = false;
    new ResizeObserver(() => this.viewChanged()).observe(root);
    this.wire();
  }

  setAxis(axis) {
    this.axis = axis;
    this.view = { v0: 0, v1: 1 };
    this.invalidate();
  }

  /** The zoom or pan moved, or the map was resized: redraw now with the blocks at hand, and ask for the new windows. */
  viewChanged() {
    this.invalidate();
    if (this.onView && this.axis) this.onView();
  }

  /** The visible parts of each axis segment, {lo, hi, px}: page-aligned, so a zoom inside one page still asks a whole page. */
  windows() {
    if (!this.axis) return '';
    const w = this.root.clientWidth || 1280;
    const out = [];
    for (const s of this.axis.segments) {
      const x0 = Math.max(this.x(s.u0, w), 0), x1 = Math.min(this.x(s.u1, w), w);
      if (x1 <= x0) continue;
      const at = x => s.lo + ((this.u(x, w) - s.u0) / (s.u1 - s.u0)) * (s.hi - s.lo);
      const lo = Math.max(Math.floor(at(x0) / 4096) * 4096, s.lo);
      const hi = Math.min(Math.ceil(at(x1) / 4096) * 4096, s.hi);
      if (hi > lo) out.push({ lo, hi, px: Math.max(1, Math.round(x1 - x0)) });
    }
    return out;
  }

  /** The address space at a point: GET /runs/{run}/map's body (blocks in columns, spans of alike blocks merged). */
  setMap(view, windows) {
    this.at = view.at;
    this.loaded = windows ?? [];
    this.lod = Boolean(view.lod);
    const { gaps, lengths, kinds, counts, decidedAt } = view.blocks;
    const blocks = new Array(gaps.length);
    let end = 0, total = 0, cells = 0;
    const drawn = new Set();
    for (let i = 0; i < gaps.length; i++) {
      const lo = end + gaps[i], k = view.kinds[kinds[i]];
      end = lo + lengths[i];
      // Cells (ADR 0015) say which kinds a stretch of space holds, not how many blocks: they are counted apart.
      if (k.cells) cells += counts[i]; else total += counts[i];
      drawn.add(typeName(k.memType, k.ipat));
      blocks[i] = { lo, hi: end, memType: k.memType, ipat: k.ipat, perms: k.perms, granule: k.granule, policy: k.policy, cells: Boolean(k.cells), count: counts[i], decidedAt: decidedAt[i] };
    }
    this.blocks = blocks;
    this.slots = view.memslots.map(m => ({ lo: Number(m.gpa), hi: Number(m.gpa) + m.size, slot: m.slot, asId: m.asId, flags: m.flags, hva: m.hva, gmem: m.guestMemfd, gmemOffset: m.guestMemfdOffset == null ? 0 : Number(m.guestMemfdOffset) }));
    this.overlay = overlayOf(view, this.slots);
    this.root.dataset.at = String(view.at);
    this.root.dataset.blocks = String(total);
    this.root.dataset.cells = String(cells);
    this.root.dataset.kinds = [...drawn].sort().join(',');
    this.root.dataset.spans = String(blocks.length);
    this.root.dataset.windows = windowsParam(this.loaded);
    this.updateSelectedBlock();
    this.invalidate();
  }

  /** Differing decisions to mark: {lo, hi, memType, ipat, label}; side draws the other side in a lane of its own. */
  setMarks(marks, side) {
    this.marks = marks.slice().sort((a, b) => a.lo - b.lo);
    this.side = side;
    this.root.dataset.marked = this.marks.map(m => hex(m.lo)).join(',');
    this.invalidate();
  }

  select(gpa) {
    this.selected = gpa;
    this.root.dataset.selected = gpa == null ? '' : hex(gpa);
    this.updateSelectedBlock();
    this.invalidate();
  }

  /** Zooms so that the block holding gpa (or a small window round it) fills a readable part of the map. */
  focus(gpa) {
    if (!this.axis) return;
    const u = this.axis.unitOf(gpa);
    const seg = this.axis.segmentOf(gpa);
    const span = seg ? (seg.u1 - seg.u0) * 1.2 : 0.2;
    this.view = clampView(u - span / 2, u + span / 2);
    this.viewChanged();
  }

  /** Zooms so that [lo, hi) fills the map (inside one segment; a range across a gap shows the gap too). */
  zoomTo(lo, hi) {
    if (!this.axis) return;
    this.view = clampView(this.axis.unitOf(lo), Math.max(this.axis.unitOf(hi), this.axis.unitOf(lo) + 1e-12));
    this.viewChanged();
  }

  blockAt(gpa) {
    const i = firstEndingAfter(this.blocks, gpa);
    const b = this.blocks[i];
    return b && b.lo <= gpa ? b : null;
  }

  updateSelectedBlock() {
    // Outside the windows the blocks were asked for, the map does not know: the last answer stands.
    if (this.selected != null && this.loaded.length && !this.loaded.some(o => this.selected >= o.lo && this.selected < o.hi)) return;
    const found = this.selected == null ? null : this.blockAt(this.selected);
    // A span of cells (ADR 0015) says which kinds are there, not the block: zoom in for it.
    const b = found && !found.cells ? found : null;
    // The one block holding the page (a merged span is blocks of one granule).
    const lo = b ? b.lo + Math.floor((this.selected - b.lo) / b.granule) * b.granule : 0;
    this.root.dataset.selectedBlock = b ? `${hex(lo)} ${b.memType}${b.ipat ? '+IPAT' : ''} ${size(b.granule)} ${b.perms}` : '';
  }

  invalidate() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      const start = performance.now();
      this.draw();
      if (this.profile) performance.measure('map-draw', { start, detail: { blocks: this.blocks.length } });
      if (this.onPainted) this.onPainted(this.at);
    });
  }

  height() {
    return LANES.s2Y + LANES.s2H + (this.side ? LANES.cmpH + 8 : 0) + 8 + LANES.privH + LANES.ticks + 6;
  }

  x(u, w) { return ((u - this.view.v0) / (this.view.v1 - this.view.v0)) * w; }
  u(x, w) { return this.view.v0 + (x / w) * (this.view.v1 - this.view.v0); }

  draw() {
    const w = this.root.clientWidth, h = this.height();
    const c = fitCanvas(this.canvas, this.ctx, w, h);
    if (!this.axis) return;
    const X = g => this.x(this.axis.unitOf(g), w);
    const cmpY = LANES.s2Y + LANES.s2H + 8;
    const privY = (this.side ? cmpY + LANES.cmpH + 8 : cmpY);

    this.drawGaps(c, w, h);
    c.font = '11px system-ui, sans-serif';
    c.textBaseline = 'middle';
    for (const s of this.slots) {
      const x0 = X(s.lo), x1 = X(s.hi);
      if (x1 < 0 || x0 > w) continue;
      c.fillStyle = s.flags && s.flags !== 'none' ? '#dfe6f2' : '#e6e9ee';
      c.fillRect(x0, LANES.slotY, Math.max(x1 - x0, 2), LANES.slotH);
      c.strokeStyle = '#b9c0ca';
      c.strokeRect(x0 + 0.5, LANES.slotY + 0.5, Math.max(x1 - x0, 2) - 1, LANES.slotH - 1);
      // Memslots as lanes: the background of the stage-2 lane shows where faults can map at all.
      c.fillStyle = '#f3f5f8';
      c.fillRect(x0, LANES.s2Y, Math.max(x1 - x0, 2), LANES.s2H);
      const label = `slot ${s.slot}${s.asId ? ` as ${s.asId}` : ''} ${size(s.hi - s.lo)}${s.flags && s.flags !== 'none' ? ' ' + s.flags.replace(/KVM_MEM_/g, '').toLowerCase() : ''}`;
      this.text(c, label, x0, x1, LANES.slotY + LANES.slotH / 2, '#394150');
    }

    this.drawBlocks(c, w, this.blocks, LANES.s2Y, LANES.s2H, X);
    if (this.side) {
      c.fillStyle = '#6b6f75';
      c.fillText('other side', 4, cmpY + 8);
      this.drawBlocks(c, w, this.marks.filter(m => m.memType), cmpY, LANES.cmpH, X);
    }
    this.drawMarks(c, w, X, cmpY);

    for (const o of this.overlay) {
      const x0 = X(o.lo), x1 = X(o.hi);
      if (x1 < 0 || x0 > w) continue;
      c.fillStyle = o.private ? '#6a3fb5' : '#d8ccef';
      c.fillRect(x0, privY, Math.max(x1 - x0, MIN_BLOCK_PX), LANES.privH);
    }
    c.fillStyle = '#6b6f75';
    if (this.overlay.length) c.fillText('private / shared', 4, privY - 5);

    this.drawTicks(c, w, privY + LANES.privH + 4);
    if (this.selected != null) {
      const x = X(this.selected);
      c.strokeStyle = '#1f5fbf';
      c.lineWidth = 1.5;
      c.beginPath();
      c.moveTo(x, LANES.slotY - 2);
      c.lineTo(x, privY + LANES.privH + 2);
      c.stroke();
      c.lineWidth = 1;
      const b = this.blockAt(this.selected);
      if (b) {
        const x0 = X(b.lo), x1 = X(b.hi);
        c.strokeStyle = '#111';
        c.lineWidth = 2;
        c.strokeRect(x0 - 1, LANES.s2Y - 1, Math.max(x1 - x0, MIN_BLOCK_PX) + 2, LANES.s2H + 2);
        c.lineWidth = 1;
      }
    }
    if (this.band) {
      c.fillStyle = 'rgba(31,95,191,.15)';
      c.fillRect(Math.min(this.band.a, this.band.b), 0, Math.abs(this.band.b - this.band.a), h);
    }
  }

  drawBlocks(c, w, blocks, y, hgt, X) {
    if (!blocks.length) return;
    const gStart = this.axis.gpaAt(Math.max(this.view.v0, 0)) ?? this.axis.segments.find(s => s.u1 >= this.view.v0)?.lo ?? 0;
    let lastPx = -1, lastColour = '';
    for (let i = firstEndingAfter(blocks, gStart); i < blocks.length; i++) {
      const b = blocks[i];
      const x0 = X(b.lo);
      if (x0 > w) break;
      const x1 = Math.max(X(b.hi), x0 + MIN_BLOCK_PX);
      const colour = typeColour(b.memType);
      const px = Math.floor(x0);
      if (px === lastPx && Math.floor(x1) === lastPx && colour === lastColour) continue;
      lastPx = Math.floor(x1);
      lastColour = colour;
      c.fillStyle = colour;
      c.fillRect(x0, y, x1 - x0, hgt);
      if (b.ipat) {
        // IPAT: the guest's PAT is ignored; white stripes over the type's colour.
        c.fillStyle = 'rgba(255,255,255,.55)';
        for (let sx = x0; sx < x1; sx += 6) c.fillRect(sx, y, Math.min(2, x1 - sx), hgt);
      }
      if (x1 - x0 > 60) {
        const what = b.cells ? `in ${size(b.hi - b.lo)}` : b.count > 1 ? `${b.count} × ${size(b.granule)}` : size(b.hi - b.lo);
        this.text(c, `${typeName(b.memType, b.ipat)} ${what} ${b.perms ?? ''}`, x0, x1, y + hgt / 2, b.memType === 'NormalNC' || b.memType === 'WC' ? '#222' : '#fff');
      }
    }
  }

  drawMarks(c, w, X, cmpY) {
    for (const m of this.marks) {
      const x0 = X(m.lo) - 2, x1 = Math.max(X(m.hi), X(m.lo) + MIN_BLOCK_PX) + 2;
      if (x1 < 0 || x0 > w) continue;
      if (!this.side && m.memType) {
        // Overlaid: the other side's type in the lower third of the block.
        c.fillStyle = typeColour(m.memType);
        c.fillRect(x0 + 2, LANES.s2Y + LANES.s2H * 0.66, x1 - x0 - 4, LANES.s2H * 0.34);
      }
      c.strokeStyle = '#c2185b';
      c.lineWidth = 2;
      c.setLineDash([5, 3]);
      c.strokeRect(x0, LANES.s2Y - 3, x1 - x0, (this.side ? cmpY + LANES.cmpH : LANES.s2Y + LANES.s2H) - LANES.s2Y + 6);
      c.setLineDash([]);
      c.lineWidth = 1;
    }
  }

  drawGaps(c, w, h) {
    const segs = this.axis.segments;
    c.font = '10px system-ui, sans-serif';
    for (let i = 1; i < segs.length; i++) {
      const x0 = this.x(segs[i - 1].u1, w), x1 = this.x(segs[i].u0, w);
      if (x1 < 0 || x0 > w) continue;
      c.fillStyle = '#f0f0ee';
      c.fillRect(x0, LANES.slotY, x1 - x0, h - LANES.slotY - LANES.ticks);
      c.strokeStyle = '#d2d2cc';
      for (let y = LANES.slotY; y < h - LANES.ticks; y += 8) {
        c.beginPath();
        c.moveTo(x0, y);
        c.lineTo(x1, y + 8);
        c.stroke();
      }
      c.fillStyle = '#8a8f96';
      c.save();
      c.translate((x0 + x1) / 2 + 3, LANES.s2Y + LANES.s2H / 2);
      c.rotate(-Math.PI / 2);
      c.textAlign = 'center';
      if (x1 - x0 > 10) c.fillText(`gap ${size(segs[i].lo - segs[i - 1].hi)}`, 0, 0);
      c.restore();
    }
  }

  drawTicks(c, w, y) {
    c.font = '10px ui-monospace, monospace';
    c.fillStyle = '#555';
    c.strokeStyle = '#999';
    c.textBaseline = 'top';
    for (const s of this.axis.segments) {
      const x0 = this.x(s.u0, w), x1 = this.x(s.u1, w);
      if (x1 < 0 || x0 > w) continue;
      const perPx = (s.hi - s.lo) / Math.max(x1 - x0, 1);
      let step = 2 ** Math.ceil(Math.log2(Math.max(perPx * 110, 4096)));
      for (let g = Math.ceil(s.lo / step) * step; g < s.hi; g += step) {
        const x = this.x(this.axis.unitOf(g), w);
        if (x < -40 || x > w + 40) continue;
        c.beginPath();
        c.moveTo(x + 0.5, y - 3);
        c.lineTo(x + 0.5, y + 2);
        c.stroke();
        // A label needs room before the segment ends, where the next segment's own label goes.
        if (x > 2 && x < Math.min(w, x1) - 90) c.fillText(hex(g), x + 2, y + 2);
      }
      // Each segment names where it starts, even when no tick falls there.
      c.fillStyle = '#222';
      if (x0 >= -2 && x0 < w - 40) c.fillText(hex(s.lo), Math.max(x0, 2), 2);
      c.fillStyle = '#555';
    }
    c.textBaseline = 'middle';
  }

  text(c, label, x0, x1, y, colour) {
    const left = Math.max(x0, 0) + 4, room = Math.min(x1, this.root.clientWidth) - left - 4;
    if (room < 24) return;
    c.save();
    c.beginPath();
    c.rect(left, y - 8, room, 16);
    c.clip();
    c.fillStyle = colour;
    c.fillText(label, left, y);
    c.restore();
  }

  wire() {
    const cv = this.canvas;
    cv.addEventListener('wheel', e => {
      e.preventDefault();
      const w = this.root.clientWidth, u = this.u(e.offsetX, w);
      const f = Math.exp(e.deltaY * 0.0015);
      const span = Math.min(Math.max((this.view.v1 - this.view.v0) * f, 1e-12), 1);
      const k = (u - this.view.v0) / (this.view.v1 - this.view.v0);
      this.view = clampView(u - k * span, u - k * span + span);
      this.viewChanged();
    }, { passive: false });
    let drag = null;
    cv.addEventListener('mousedown', e => {
      drag = { x: e.offsetX, v: { ...this.view }, select: e.shiftKey, moved: false };
      if (!e.shiftKey) this.root.classList.add('dragging');
    });
    window.addEventListener('mousemove', e => {
      if (!drag) return;
      const rect = cv.getBoundingClientRect(), x = e.clientX - rect.left, w = this.root.clientWidth;
      if (Math.abs(x - drag.x) > 3) drag.moved = true;
      if (drag.select) {
        this.band = { a: drag.x, b: x };
      } else {
        const du = ((x - drag.x) / w) * (drag.v.v1 - drag.v.v0);
        this.view = clampView(drag.v.v0 - du, drag.v.v1 - du);
        this.viewChanged();
      }
      this.invalidate();
    });
    window.addEventListener('mouseup', e => {
      if (!drag) return;
      const d = drag;
      drag = null;
      this.root.classList.remove('dragging');
      const w = this.root.clientWidth, rect = cv.getBoundingClientRect(), x = e.clientX - rect.left;
      if (d.select && d.moved) {
        const a = this.u(Math.min(d.x, x), w), b = this.u(Math.max(d.x, x), w);
        this.view = clampView(a, Math.max(b, a + 1e-12));
        this.viewChanged();
      } else if (!d.moved) {
        const g = this.pick(x, w);
        if (g != null) this.onSelect(g);
      }
      this.band = null;
      this.invalidate();
    });
    cv.addEventListener('dblclick', () => { this.view = { v0: 0, v1: 1 }; this.viewChanged(); });
    cv.addEventListener('mousemove', e => this.hover(e.offsetX, e.offsetY));
    cv.addEventListener('mouseleave', () => { this.tooltip.hidden = true; });
  }

  /** The gpa a click means: the block under the pointer (within a couple of pixels), else the page there. */
  pick(x, w) {
    const b = this.blockNear(x, w);
    if (b) {
      const g = this.axis.gpaAt(this.u(x, w));
      return g != null && g >= b.lo && g < b.hi ? Math.floor(g / 4096) * 4096 : b.lo;
    }
    const g = this.axis.gpaAt(this.u(x, w));
    return g == null ? null : Math.floor(g / 4096) * 4096;
  }

  blockNear(x, w) {
    const a = this.axis.gpaAt(this.u(x - 2, w)), b = this.axis.gpaAt(this.u(x + 2, w));
    if (a == null && b == null) return null;
    const lo = a ?? b, hi = b ?? a;
    const i = firstEndingAfter(this.blocks, lo);
    const blk = this.blocks[i];
    return blk && blk.lo <= hi ? blk : null;
  }

  hover(x, y) {
    const w = this.root.clientWidth;
    let text = null;
    if (y >= LANES.s2Y && y <= LANES.s2Y + LANES.s2H) {
      const b = this.blockNear(x, w);
      if (b) {
        const blocks = b.count > 1 ? `${b.count} blocks of ${size(b.granule)}` : `${size(b.granule)} block`;
        // At a level of detail the span is every block in its pixel(s), drawn as the least cacheable kind there, with the latest change;
        // zoomed out, the span is cells of guest space (ADR 0015): which kinds they hold, not the blocks.
        text = b.cells
          ? `${hex(b.lo)} - ${hex(b.hi)}\n${b.count} cells of ${size(b.granule)} holding blocks, drawn as ${typeName(b.memType, b.ipat)} (the least cacheable kind in them)\nthe kinds in them last changed at seq ${b.decidedAt}; zoom in for each block`
          : this.lod && b.count > 1
          ? `${hex(b.lo)} - ${hex(b.hi)}\n${b.count} blocks here, drawn as ${typeName(b.memType, b.ipat)} ${size(b.granule)} ${b.perms} (the least cacheable kind here)\nlatest change at seq ${b.decidedAt} under ${b.policy}; zoom in for each block`
          : `${hex(b.lo)} - ${hex(b.hi)}\n${typeName(b.memType, b.ipat)}  ${blocks}  ${b.perms}\n${b.count > 1 ? 'last ' : ''}decided at seq ${b.decidedAt} under ${b.policy}`;
        const m = this.marks.find(m => m.lo < b.hi && m.hi > b.lo);
        if (m) text += `\ndiffers: ${m.label}`;
      }
    } else if (y >= LANES.slotY && y <= LANES.slotY + LANES.slotH) {
      const g = this.axis.gpaAt(this.u(x, w));
      const s = g == null ? null : this.slots.find(s => g >= s.lo && g < s.hi);
      if (s) text = `memslot ${s.slot} (as ${s.asId})\ngpa ${hex(s.lo)} - ${hex(s.hi)} (${size(s.hi - s.lo)})\nhva ${s.hva}  flags ${s.flags}${s.gmem != null ? `\nguest_memfd ${s.gmem} @ ${hex(s.gmemOffset)}` : ''}`;
    }
    if (!text) {
      const g = this.axis.gpaAt(this.u(x, w));
      text = g == null ? 'gap: no memslot ever here' : `${hex(Math.floor(g / 4096) * 4096)}  not mapped`;
    }
    this.tooltip.textContent = text;
    this.tooltip.hidden = false;
    this.tooltip.style.left = `${Math.min(x + 14, w - 260)}px`;
    this.tooltip.style.top = `${y + 14}px`;
  }
}

/** Windows as GET /runs/{run}/map's `windows` parameter: "LO-HI:PIXELS,...". */
export const windowsParam = windows => windows.map(o => `${hex(o.lo)}-${hex(o.hi)}:${o.px}`).join(',');

function clampView(v0, v1) {
  const span = Math.min(v1 - v0, 1);
  const a = Math.min(Math.max(v0, 0), 1 - span);
  return { v0: a, v1: a + span };
}

/** Private and shared guest ranges: KVM memory attributes by gpa, and guest_memfd shareability seen through the memslots. */
function overlayOf(view, slots) {
  const out = view.attributes.map(a => ({ lo: Number(a.gpa), hi: Number(a.gpa) + a.size, private: a.private }));
  for (const sh of view.shareability) {
    const off = Number(sh.offset), end = off + sh.size;
    for (const s of slots) {
      if (s.gmem !== sh.fd) continue;
      const lo = Math.max(off, s.gmemOffset), hi = Math.min(end, s.gmemOffset + (s.hi - s.lo));
      if (hi > lo) out.push({ lo: s.lo + (lo - s.gmemOffset), hi: s.lo + (hi - s.gmemOffset), private: !sh.shared });
    }
  }
  return out.sort((a, b) => a.lo - b.lo);
}
