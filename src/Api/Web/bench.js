// The UI benchmark (`./audit bench --ui`): loaded only with ?bench=N. Scrubs N times to seeded seqs, one
// move per animation frame as a drag does, waits for the map to settle, and posts the figures the page
// measured (first load of the run; each move to the repaint that served it) to the bench host. It scrubs
// twice: the whole address space in view, then zoomed into one window of guest RAM, where the blocks in
// view no longer grow with the run. Each pass also splits the map requests that served it: server time
// (its Server-Timing: the database, then building the answer), waiting for the first byte, transfer, the
// JSON parse and the canvas draw, from the browser's resource timing and the page's performance measures.

const settle = () => new Promise(r => setTimeout(r, 300));
const frame = () => new Promise(r => requestAnimationFrame(() => r()));

function percentile(xs, p) {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : null;
}

const round = x => (x == null ? null : Math.round(x * 10) / 10);
const spread = xs => [round(percentile(xs, 50)), round(percentile(xs, 95))];

/** Where the map requests and draws since `since` (a performance.now()) spent their time: [p50, p95] of each part. */
function profile(since) {
  const requests = performance.getEntriesByType('resource').filter(e => e.startTime >= since && /\/map\?.*windows=/.test(e.name));
  const timing = (e, name) => e.serverTiming.find(t => t.name === name)?.duration ?? 0;
  const measures = name => performance.getEntriesByType('measure').filter(m => m.startTime >= since && m.name.startsWith(name));
  return {
    requests: requests.length,
    serverDbMs: spread(requests.map(e => timing(e, 'db'))),
    serverBuildMs: spread(requests.map(e => timing(e, 'build'))),
    firstByteMs: spread(requests.map(e => e.responseStart - e.requestStart)),
    transferMs: spread(requests.map(e => e.responseEnd - e.responseStart)),
    bytes: spread(requests.map(e => e.encodedBodySize)),
    parseMs: spread(measures('parse /runs/').filter(m => m.name.includes('/map?')).map(m => m.duration)),
    drawMs: spread(measures('map-draw').map(m => m.duration)),
  };
}

/** N moves, one per frame, then waits until every move was served; the repaint times and the split of this pass. */
async function scrub(n, moveTo, last, bench) {
  const since = performance.now();
  bench.scrubs = [];
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  // Drags: runs of nearby seqs, as a hand moves the cursor, from random starting points.
  let seq = 1;
  for (let i = 0; i < n; i++) {
    seq = i % 20 === 0 ? Math.floor(rnd() * last) + 1 : Math.min(Math.max(seq + Math.round((rnd() - 0.3) * last / 200), 1), last);
    moveTo(seq, false);
    await frame();
  }
  while (bench.pendingScrubs.length) await frame();
  await settle();
  return {
    served: bench.scrubs.length,
    repaintP50Ms: percentile(bench.scrubs, 50),
    repaintP95Ms: percentile(bench.scrubs, 95),
    repaintMaxMs: Math.max(...bench.scrubs),
    blocks: Number(document.getElementById('map').dataset.blocks),
    spans: Number(document.getElementById('map').dataset.spans),
    profile: profile(since),
  };
}

export async function runBench(moves, moveTo, timeline, map, bench) {
  const n = moves || 200;
  while (!bench.loads.length) await frame();
  await settle();
  const last = timeline.data.lastSeq;
  const whole = await scrub(n, moveTo, last, bench);
  // 64 MiB of guest RAM from its start (the synthetic run's RAM memslot is at 1 GiB).
  map.zoomTo(0x40000000, 0x44000000);
  while (bench.pendingScrubs.length || document.getElementById('map').dataset.windows?.startsWith('0x40000000-0x44000000') !== true) await frame();
  await settle();
  const zoomed = await scrub(n, moveTo, last, bench);
  const result = { moves: n, lastSeq: last, firstLoadMs: bench.loads[0], whole, zoomed };
  await fetch('/bench/ui-result', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(result) });
  document.body.dataset.bench = JSON.stringify(result);
}
