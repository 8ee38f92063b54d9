// The page's controller: holds the view state (run, at, gpa, comparison), keeps it in the URL, and feeds
// the map, the scrubber, the why panel and the comparison from the HTTP API. No build step (ADR 0012).

import { api, profileParsing } from './api.js';
import { SegmentedAxis, mergeExtents } from './axis.js';
import { AddressMap, windowsParam } from './map.js';
import { Timeline, timelineKinds } from './timeline.js';
import { renderWhy, renderHistoryOnly, clearWhy } from './why.js';
import { markOf, renderComparison, clearComparison } from './compare.js';
import { esc, hex, num } from './format.js';

const $ = id => document.getElementById(id);
const view = { run: null, at: null, gpa: null, policy: null, diff: null, side: false, by: 'seq' };
let runs = [];
let lastState = null;
let history = null;
let comparison = null;
let highlightRule = null;
let generation = 0;
const bench = (window.__auditBench = { loads: [], scrubs: [], pendingScrubs: [] });
// Read before the first replaceState: the URL the page keeps has no bench parameter.
const benchMoves = new URLSearchParams(location.search).get('bench');

// ---- errors: always in the page, never a blank screen -------------------------------------------------
function showError(e) {
  $('error-text').textContent = e?.message ?? String(e);
  $('error').hidden = false;
}
const clearError = () => { $('error').hidden = true; };
$('error-close').addEventListener('click', clearError);
window.addEventListener('unhandledrejection', e => showError(e.reason));

// ---- the URL is the state --------------------------------------------------------------------------------
function urlOf() {
  const p = new URLSearchParams();
  if (view.run) p.set('run', view.run);
  if (view.at != null) p.set('at', String(view.at));
  if (view.gpa != null) p.set('gpa', hex(view.gpa));
  if (view.policy) p.set('policy', view.policy);
  if (view.diff) p.set('diff', view.diff);
  if (view.side) p.set('view', 'side');
  if (view.by === 'time') p.set('by', 'time');
  return `/?${p}`;
}
// A drag replaces the URL at most every REPLACE_MS, the last move always: each replaceState is a round trip to
// Chromium's browser process (a third of the browser's CPU in the UI bench at one per frame), and Chromium ignores
// them beyond 200 in 10 s anyway. A commit (click, key, link) pushes at once.
const REPLACE_MS = 250;
let replaceTimer = 0;
function record(push) {
  if (!push) {
    if (!replaceTimer) replaceTimer = setTimeout(() => { replaceTimer = 0; writeUrl(false); }, REPLACE_MS);
    return;
  }
  clearTimeout(replaceTimer);
  replaceTimer = 0;
  writeUrl(true);
}
function writeUrl(push) {
  const url = urlOf();
  if (url === location.pathname + location.search) return;
  if (push) history_.pushState(null, '', url); else history_.replaceState(null, '', url);
}
const history_ = window.history;

function fromUrl() {
  const p = new URLSearchParams(location.search);
  const gpa = p.get('gpa');
  const at = p.get('at');
  return {
    run: p.get('run'),
    at: at != null && /^\d+$/.test(at) ? Number(at) : at,
    gpa: gpa != null && gpa !== '' && Number.isFinite(num(gpa)) ? num(gpa) : null,
    policy: p.get('policy'),
    diff: p.get('diff'),
    side: p.get('view') === 'side',
    by: p.get('by') === 'time' ? 'time' : 'seq',
  };
}

// ---- coalescing: one request in flight per panel; the newest wish wins ----------------------------------
function coalesced(fn) {
  let want, busy = false;
  return arg => {
    want = { arg };
    if (busy) return;
    busy = true;
    (async () => {
      while (want) {
        const { arg: a } = want;
        want = undefined;
        try { await fn(a); } catch (e) { showError(e); }
      }
      busy = false;
    })();
  };
}

// ---- components ----------------------------------------------------------------------------------------
const map = new AddressMap($('map'), { onSelect: gpa => selectGpa(gpa, true) });
map.onView = () => { if (view.run && lastState) loadState({ run: view.run, at: view.at, gen: generation }); };
if (benchMoves) {
  map.profile = true;
  profileParsing(true);
  performance.setResourceTimingBufferSize(100000);
}
const timeline = new Timeline($('scrubber'), {
  onScrub: seq => moveTo(seq, false),
  onCommit: seq => moveTo(seq, true),
});

// The windows are read when the request goes out: a zoom while one is in flight is served by the next.
let awaitingPaint = [];
const loadState = coalesced(async ({ run, at, gen }) => {
  const issued = performance.now();
  const windows = map.windows();
  const state = await api.map(run, at, windowsParam(windows));
  if (gen !== generation) return;
  lastState = state;
  map.setMap(state, windows);
  // A scrub is served by the first repaint of a state asked for after it. Two states can arrive before one
  // repaint: the scrubs the first served wait for that repaint too (they were dropped from the figures before).
  awaitingPaint.push(...bench.pendingScrubs.filter(s => s.t <= issued));
  bench.pendingScrubs = bench.pendingScrubs.filter(s => s.t > issued);
  map.onPainted = () => {
    const now = performance.now();
    for (const s of awaitingPaint) bench.scrubs.push(now - s.t);
    awaitingPaint = [];
  };
});

const loadWhy = coalesced(async ({ run, gpa, at, gen }) => {
  const why = await api.why(run, hex(gpa), at);
  if (gen !== generation || view.gpa !== gpa) return;
  renderWhy($('why'), why, history, highlightRule);
});

// ---- navigation ----------------------------------------------------------------------------------------
function moveTo(seq, commit) {
  if (!view.run || !timeline.data) return;
  const at = Math.min(Math.max(Math.round(seq), 1), timeline.data.lastSeq);
  if (at !== view.at) {
    bench.pendingScrubs.push({ t: performance.now() });
    performance.mark('scrub');
    view.at = at;
    timeline.setAt(at);
    atLabel();
    loadState({ run: view.run, at, gen: generation });
    if (view.gpa != null) loadWhy({ run: view.run, gpa: view.gpa, at, gen: generation });
  }
  record(commit);
}

function selectGpa(gpa, push) {
  view.gpa = gpa;
  highlightRule = null;
  map.select(gpa);
  record(push);
  history = null;
  loadWhy({ run: view.run, gpa, at: view.at, gen: generation });
  const gen = generation;
  api.history(view.run, hex(gpa)).then(h => {
    if (gen !== generation || view.gpa !== gpa) return;
    history = h;
    renderHistoryOnly($('why'), h, view.at);
  }, showError);
}

const AUTO_LINT_MAX_EVENTS = 1_000_000;

function lintRun(run, gen) {
  api.lint(run).then(report => { if (gen === generation) timeline.setFindings(report.findings ?? []); }, () => timeline.setFindings([]));
}

$('lint-run').addEventListener('click', () => {
  $('lint-run').hidden = true;
  lintRun(view.run, generation);
});

function atLabel() {
  const d = timeline.data;
  const slice = d?.slices.find(s => s.fromSeq <= view.at && view.at <= s.toSeq);
  const ts = slice && slice.fromSeq === slice.toSeq ? slice.fromTs : null;
  $('at-label').textContent = `seq ${view.at} of ${d?.lastSeq ?? '?'}${ts ? ' · ' + ts : ''}`;
}

async function loadRun(target) {
  const gen = ++generation;
  const t0 = performance.now();
  performance.mark('run-load-start');
  Object.assign(view, { run: target.run, gpa: target.gpa, policy: target.policy, diff: target.diff, side: target.side, by: target.by });
  $('run').value = target.run;
  for (const tr of $('runs').tBodies[0].rows) tr.classList.toggle('current', tr.dataset.run === target.run);
  $('timeline-by').value = view.by;
  clearWhy($('why'));
  try {
    // The map first: the timeline counts every event of the run, and arrives when it does. The first
    // answer gives the point and the populated extents (one page's blocks: the axis is not known yet);
    // the second the blocks of every window the axis shows.
    const first = await api.map(target.run, target.at ?? undefined, '0x0-0x1000:1');
    if (gen !== generation) return;
    map.setAxis(new SegmentedAxis(mergeExtents(first.extents.map(e => ({ lo: num(e.gpa), hi: num(e.gpa) + e.size })))));
    const windows = map.windows();
    const state = await api.map(target.run, first.at, windowsParam(windows));
    if (gen !== generation) return;
    clearError();
    lastState = state;
    view.at = state.at;
    map.setMap(state, windows);
    map.select(view.gpa);
    timeline.setData({ run: target.run, by: view.by, buckets: 1000, lastSeq: state.lastSeq, firstTs: null, lastTs: null, slices: [] });
    timeline.setAt(state.at);
    atLabel();
    map.onPainted = () => {
      performance.measure('run-load', 'run-load-start');
      bench.loads.push(performance.now() - t0);
      map.onPainted = null;
    };
    api.timeline(target.run, view.by, 1000).then(tl => {
      if (gen !== generation) return;
      timeline.setData(tl);
      atLabel();
      // Lint findings become markers under the event kinds; a run lint cannot judge just shows none. Lint reads
      // and holds every event of the run (46 s and 5 GB for the 10M-event bench run), so a long run is linted
      // when asked, not on opening: there it ran beside every map request of the session.
      $('lint-run').hidden = tl.lastSeq <= AUTO_LINT_MAX_EVENTS;
      if (tl.lastSeq <= AUTO_LINT_MAX_EVENTS) lintRun(target.run, gen);
    }, showError);
    record(false);
    // The whole space stays in view: the selected block is outlined in its context.
    if (view.gpa != null) selectGpa(view.gpa, false);
    // Not awaited: a replay takes longer than the map, and may first need the token from the user.
    loadComparison(gen).catch(showError);
  } catch (e) {
    if (gen !== generation) return;
    map.setMap({ at: '', kinds: [], blocks: { gaps: [], lengths: [], kinds: [], counts: [], decidedAt: [] }, memslots: [], attributes: [], shareability: [] });
    showError(e);
  }
}

async function loadComparison(gen) {
  $('compare').value = view.policy ? `policy:${view.policy}` : view.diff ? `run:${view.diff}` : '';
  $('compare-view').hidden = $('first-divergence').hidden = !(view.policy || view.diff);
  $('compare-view').value = view.side ? 'side' : 'overlay';
  comparison = null;
  if (!view.policy && !view.diff) {
    map.setMarks([], false);
    clearComparison();
    return;
  }
  const body = view.policy ? await api.replay(view.run, view.policy) : await api.diff(view.run, view.diff);
  if (gen !== generation) return;
  comparison = renderComparison(body, view.policy ? 'policy' : 'run', entry => {
    moveTo(Math.min(entry.seq, timeline.data.lastSeq), true);
    if (entry.gpa != null) { map.focus(entry.gpa); selectGpa(entry.gpa, false); }
  });
  map.setMarks(comparison.entries.map(markOf).filter(Boolean), view.side);
}

async function apply(target) {
  if (!target.run) {
    target.run = runs[0]?.run;
    $('runs-panel').open = true;
    if (!target.run) { showError(new Error('no runs yet: import one with ./audit ingest FILE (or ./audit demo)')); return; }
  }
  const sameRun = target.run === view.run && target.by === view.by && timeline.data;
  if (!sameRun) return loadRun(target);
  const comparisonChanged = target.policy !== view.policy || target.diff !== view.diff || target.side !== view.side;
  Object.assign(view, { policy: target.policy, diff: target.diff, side: target.side });
  if (target.at != null && target.at !== view.at) moveTo(target.at, false);
  if (target.gpa !== view.gpa) {
    if (target.gpa == null) { view.gpa = null; map.select(null); clearWhy($('why')); } else selectGpa(target.gpa, false);
  }
  if (comparisonChanged) await loadComparison(generation);
}

// ---- search: a gpa, an hva, a rule id or an event type --------------------------------------------------
async function search(text) {
  const t = text.trim();
  if (!t || !view.run) return;
  if (/^(0x[0-9a-f]+|\d+)$/i.test(t)) {
    const n = num(t);
    if (map.axis?.segmentOf(n)) { map.focus(n); selectGpa(Math.floor(n / 4096) * 4096, true); return; }
    const slot = lastState?.memslots.find(m => n >= num(m.hva) && n < num(m.hva) + m.size);
    if (slot) {
      const gpa = num(slot.gpa) + (n - num(slot.hva));
      map.focus(gpa);
      selectGpa(Math.floor(gpa / 4096) * 4096, true);
      return;
    }
    throw new Error(`${t} is neither a guest physical address of run ${view.run} nor a host address inside one of its memslots at seq ${view.at}`);
  }
  if (/^[a-z0-9_]+(\.[a-z0-9_]+)+$/i.test(t)) {
    const li = $('why').querySelector(`li[data-rule="${CSS.escape(t)}"]`);
    if (li) {
      highlightRule = t;
      li.classList.add('found');
      li.scrollIntoView({ block: 'nearest' });
      return;
    }
    // Not in the open decision: the next decision after the cursor that cites it, with its page opened (one history entry).
    const found = await api.findRule(view.run, t, view.at);
    moveTo(found.seq, found.gpa == null);
    if (found.gpa != null) {
      const gpa = num(found.gpa);
      map.focus(gpa);
      selectGpa(Math.floor(gpa / 4096) * 4096, true);
    }
    highlightRule = t;
    return;
  }
  const found = await api.find(view.run, t, view.at);
  moveTo(found.seq, true);
}

// ---- keyboard: one event, or one change of the selected page --------------------------------------------
document.addEventListener('keydown', e => {
  if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement || !timeline.data) return;
  if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight' && e.key !== 'Home' && e.key !== 'End') return;
  e.preventDefault();
  const forward = e.key === 'ArrowRight';
  if (e.key === 'Home') return moveTo(1, true);
  if (e.key === 'End') return moveTo(timeline.data.lastSeq, true);
  if (!e.shiftKey) return moveTo(view.at + (forward ? 1 : -1), false);
  if (!history) return;
  const seqs = [...new Set(history.changes.map(c => c.seq))].sort((a, b) => a - b);
  const next = forward ? seqs.find(s => s > view.at) : seqs.filter(s => s < view.at).pop();
  if (next != null) moveTo(next, true);
});

// ---- wiring --------------------------------------------------------------------------------------------
$('why').addEventListener('click', e => {
  const a = e.target.closest('a.seq');
  if (!a) return;
  e.preventDefault();
  moveTo(Number(a.dataset.seq), true);
});
$('run').addEventListener('change', () => apply({ run: $('run').value, at: null, gpa: null, policy: null, diff: null, side: false, by: view.by }).then(() => record(true)));
$('timeline-by').addEventListener('change', () => {
  view.by = $('timeline-by').value;
  const gen = generation;
  api.timeline(view.run, view.by, 1000).then(tl => {
    if (gen !== generation) return;
    timeline.setData(tl);
    timeline.setAt(view.at);
    record(true);
  }, showError);
});
$('compare').addEventListener('change', () => {
  const v = $('compare').value;
  view.policy = v.startsWith('policy:') ? v.slice(7) : null;
  view.diff = v.startsWith('run:') ? v.slice(4) : null;
  record(true);
  loadComparison(generation).catch(showError);
});
$('compare-view').addEventListener('change', () => {
  view.side = $('compare-view').value === 'side';
  record(true);
  if (comparison) map.setMarks(comparison.entries.map(markOf).filter(Boolean), view.side);
});
$('first-divergence').addEventListener('click', () => comparison?.first && comparison.jump(comparison.first));
$('search-form').addEventListener('submit', e => {
  e.preventDefault();
  // A rule id not in the open decision reads the run from the cursor on (seconds on a run of millions of events).
  const box = $('search');
  box.setAttribute('aria-busy', 'true');
  search(box.value).catch(showError).finally(() => box.removeAttribute('aria-busy'));
});
window.addEventListener('popstate', () => {
  // A replace still waiting belongs to the entry just left: it must not land on this one.
  clearTimeout(replaceTimer);
  replaceTimer = 0;
  apply(fromUrl()).catch(showError);
});

function legend() {
  $('map-legend').innerHTML = [
    ['sw-normal', 'Normal / WB'], ['sw-nc', 'Normal-NC / WC'], ['sw-device', 'Device / UC'], ['sw-wt', 'WT'], ['sw-wp', 'WP'],
    ['sw-ipat', 'IPAT (striped)'], ['sw-slot', 'memslot'], ['sw-private', 'private (guest_memfd / attributes)'], ['sw-mark', 'differs in the comparison'],
  ].map(([c, t]) => `<span><span class="swatch ${c}"></span>${esc(t)}</span>`).join('') + '<span>hover a block: range, type, block size, permissions</span>';
  const cls = ['sw-memslot', 'sw-unmap', 'sw-exit', 'sw-div', 'sw-err'];
  $('timeline-legend').innerHTML = '<span><span class="swatch" id="sw-density"></span>events (log density)</span>'
    + timelineKinds.map(([, , t], i) => `<span><span class="swatch ${cls[i]}"></span>${esc(t)}</span>`).join('')
    + '<span><span class="swatch sw-lint"></span>lint finding (hover the strip; `audit lint RUN`)</span>';
}

async function start() {
  legend();
  try {
    const [list, policies] = await Promise.all([api.runs(), api.policies()]);
    runs = list;
    $('run').innerHTML = list.map(r => `<option value="${esc(r.run)}">${esc(r.run)}</option>`).join('');
    $('runs').tBodies[0].innerHTML = list.map(r => `<tr data-run="${esc(r.run)}"><td>${esc(r.run)}</td><td>${esc(r.host ?? '-')}</td><td>${esc(r.policy ?? '-')}</td>
      <td>${r.events}</td><td>${r.derived}</td><td>${esc(r.firstTs ?? '-')}</td><td>${esc(r.lastTs ?? '-')}</td></tr>`).join('');
    $('compare').innerHTML = '<option value="">nothing</option>'
      + `<optgroup label="replay under policy">${policies.map(p => `<option value="policy:${esc(p.id)}">${esc(p.id)} (${esc(p.kernels)})</option>`).join('')}</optgroup>`
      + `<optgroup label="diff with run">${list.map(r => `<option value="run:${esc(r.run)}">${esc(r.run)}</option>`).join('')}</optgroup>`;
  } catch (e) {
    showError(e);
  }
  $('runs').addEventListener('click', e => {
    const tr = e.target.closest('tr[data-run]');
    if (tr) apply({ run: tr.dataset.run, at: null, gpa: null, policy: null, diff: null, side: false, by: view.by }).then(() => record(true));
  });
  await apply(fromUrl());
  document.body.dataset.ready = 'true';
  if (benchMoves) (await import('./bench.js')).runBench(Number(benchMoves), moveTo, timeline, map, bench);
}

start();
