// The scrubber: the run's events as a density strip over seq or time, one marker row per kind
// (memslot changes, unmaps, memory-fault exits, divergences, errors), and the cursor at `at`.
// Dragging reports every seq it passes over; the app coalesces the queries that follow.

import { fitCanvas } from './format.js';

const KINDS = [
  ['memslotChanges', '#4a7bd0', 'memslot change'],
  ['unmaps', '#7a7f87', 'stage-2 unmap'],
  ['memoryFaultExits', '#e2a72e', 'memory-fault exit'],
  ['divergences', '#c2185b', 'divergence'],
  ['errors', '#d24a3f', 'error'],
];
const STRIP = 40, ROW = 7, TOP = 4;
// Lint findings (GET /runs/{run}/lint) get a row of their own under the event kinds, coloured by severity.
const SEVERITY = { Error: '#b71c1c', Warning: '#ef6c00', Note: '#607d8b' };

export const timelineKinds = KINDS;

export class Timeline {
  constructor(root, { onScrub, onCommit }) {
    this.root = root;
    this.canvas = root.querySelector('canvas');
    this.ctx = this.canvas.getContext('2d');
    this.onScrub = onScrub;
    this.onCommit = onCommit;
    this.data = null;
    this.findings = [];
    this.at = 0;
    this.frame = 0;
    new ResizeObserver(() => this.invalidate()).observe(root);
    this.wire();
  }

  setData(view) {
    this.data = view;
    this.root.dataset.last = String(view.lastSeq);
    this.root.dataset.by = view.by;
    this.root.setAttribute('aria-valuemin', '1');
    this.root.setAttribute('aria-valuemax', String(view.lastSeq));
    if (view.by === 'time') {
      this.t0 = Date.parse(view.firstTs);
      this.t1 = Date.parse(view.lastTs);
      this.timed = Number.isFinite(this.t0) && Number.isFinite(this.t1) && this.t1 > this.t0;
    }
    this.invalidate();
  }

  /** Lint findings as markers at the seqs they cite; the DOM lists them (`ruleId@seq`) for readers and tests. */
  setFindings(findings) {
    this.findings = findings.flatMap(f => f.seqs.map(seq => ({ seq, severity: f.severity, ruleId: f.ruleId, message: f.message })));
    this.root.dataset.findings = this.findings.map(f => `${f.ruleId}@${f.seq}`).join(' ');
    this.canvas.title = this.findings.map(f => `seq ${f.seq}: ${f.ruleId} (${f.severity.toLowerCase()}) ${f.message}`).join('\n');
    this.invalidate();
  }

  setAt(at) {
    this.at = at;
    this.root.dataset.at = String(at);
    this.root.setAttribute('aria-valuenow', String(at));
    this.invalidate();
  }

  invalidate() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); });
  }

  /** Where a slice sits: [x0, x1) in pixels. Over time, slices are equal in time; over seq, in seq. */
  sliceX(b, w) {
    const n = this.data.buckets;
    if (this.data.by === 'time') return [(b.index / n) * w, ((b.index + 1) / n) * w];
    return [this.seqX(b.fromSeq - 0.5, w), this.seqX(b.toSeq + 0.5, w)];
  }

  seqX(seq, w) {
    const last = Math.max(this.data.lastSeq, 1);
    return ((seq - 0.5) / last) * w;
  }

  /** The x of the cursor for `at`: its seq, or over time the slice that holds it. */
  atX(w) {
    return this.atXOf(this.at, w);
  }

  atXOf(seq, w) {
    if (this.data.by !== 'time') return this.seqX(seq, w);
    const b = this.data.slices.find(s => s.fromSeq <= seq && seq <= s.toSeq)
      ?? this.data.slices.filter(s => s.toSeq <= seq).pop();
    if (!b) return 0;
    const [x0, x1] = this.sliceX(b, w);
    const span = Math.max(b.toSeq - b.fromSeq, 1);
    return x0 + ((seq - b.fromSeq) / span) * (x1 - x0);
  }

  /** The seq a pointer at x means: over seq, proportional; over time, the last event at or before that time. */
  seqAt(x, w) {
    const d = this.data;
    const f = Math.min(Math.max(x / w, 0), 1);
    if (d.by !== 'time') return Math.min(Math.max(Math.round(f * d.lastSeq + 0.5), 1), d.lastSeq);
    const idx = Math.min(Math.floor(f * d.buckets), d.buckets - 1);
    let best = d.slices[0]?.fromSeq ?? 1;
    for (const s of d.slices) {
      if (s.index > idx) break;
      best = s.index === idx ? Math.round(s.fromSeq + (f * d.buckets - idx) * (s.toSeq - s.fromSeq)) : s.toSeq;
    }
    return best;
  }

  draw() {
    const w = this.root.clientWidth, h = TOP + STRIP + 4 + (KINDS.length + 1) * ROW + 12;
    const c = fitCanvas(this.canvas, this.ctx, w, h);
    if (!this.data) return;
    const max = Math.max(...this.data.slices.map(s => s.events), 1);
    for (const s of this.data.slices) {
      const [x0, x1] = this.sliceX(s, w);
      // Log density: one event must stay visible beside a burst of thousands.
      const bar = (Math.log1p(s.events) / Math.log1p(max)) * STRIP;
      c.fillStyle = '#9db4d8';
      c.fillRect(x0, TOP + STRIP - bar, Math.max(x1 - x0 - (x1 - x0 > 4 ? 1 : 0), 1), bar);
      KINDS.forEach(([key, colour], k) => {
        if (!s[key]) return;
        c.fillStyle = colour;
        c.fillRect(x0, TOP + STRIP + 4 + k * ROW, Math.max(x1 - x0, 2), ROW - 2);
      });
    }
    const lintRow = TOP + STRIP + 4 + KINDS.length * ROW;
    for (const f of this.findings) {
      const fx = this.data.by === 'time' ? this.atXOf(f.seq, w) : this.seqX(f.seq, w);
      c.fillStyle = SEVERITY[f.severity] ?? SEVERITY.Note;
      c.beginPath();
      c.moveTo(fx, lintRow);
      c.lineTo(fx + 3, lintRow + ROW - 1);
      c.lineTo(fx - 3, lintRow + ROW - 1);
      c.fill();
    }
    const x = this.atX(w);
    c.fillStyle = 'rgba(31,95,191,.08)';
    c.fillRect(x, 0, w - x, h);
    c.strokeStyle = '#1f5fbf';
    c.lineWidth = 2;
    c.beginPath();
    c.moveTo(x, 0);
    c.lineTo(x, h);
    c.stroke();
    c.lineWidth = 1;
    c.fillStyle = '#1f5fbf';
    c.beginPath();
    c.moveTo(x - 5, 0);
    c.lineTo(x + 5, 0);
    c.lineTo(x, 6);
    c.fill();
    c.font = '10px ui-monospace, monospace';
    c.fillStyle = '#555';
    c.textBaseline = 'bottom';
    const first = this.data.by === 'time' ? (this.data.firstTs ?? '') : 'seq 1';
    const last = this.data.by === 'time' ? (this.data.lastTs ?? '') : `seq ${this.data.lastSeq}`;
    c.fillText(first, 2, h);
    c.textAlign = 'right';
    c.fillText(last, w - 2, h);
    c.textAlign = 'left';
  }

  wire() {
    let dragging = false;
    const seqOf = e => {
      const rect = this.canvas.getBoundingClientRect();
      return this.seqAt(e.clientX - rect.left, rect.width);
    };
    this.canvas.addEventListener('mousedown', e => {
      if (!this.data) return;
      dragging = true;
      this.root.focus();
      this.onScrub(seqOf(e));
    });
    window.addEventListener('mousemove', e => { if (dragging) this.onScrub(seqOf(e)); });
    window.addEventListener('mouseup', e => {
      if (!dragging) return;
      dragging = false;
      this.onCommit(seqOf(e));
    });
  }
}
