// The UI benchmark (`./audit bench --ui`): loaded only with ?bench=N. Scrubs N times to seeded seqs, one
// move per animation frame as a drag does, waits for the map to settle, and posts the figures the page
// measured (first load of the run; each move to the repaint that served it) to the bench host.

const settle = () => new Promise(r => setTimeout(r, 300));
const frame = () => new Promise(r => requestAnimationFrame(() => r()));

function percentile(xs, p) {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : null;
}

export async function runBench(moves, moveTo, timeline, bench) {
  const n = moves || 200;
  while (!bench.loads.length) await frame();
  await settle();
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const last = timeline.data.lastSeq;
  // Drags: runs of nearby seqs, as a hand moves the cursor, from random starting points.
  let seq = 1;
  for (let i = 0; i < n; i++) {
    seq = i % 20 === 0 ? Math.floor(rnd() * last) + 1 : Math.min(Math.max(seq + Math.round((rnd() - 0.3) * last / 200), 1), last);
    moveTo(seq, false);
    await frame();
  }
  while (bench.pendingScrubs.length) await frame();
  await settle();
  const result = {
    moves: n,
    served: bench.scrubs.length,
    lastSeq: last,
    firstLoadMs: bench.loads[0],
    repaintP50Ms: percentile(bench.scrubs, 50),
    repaintP95Ms: percentile(bench.scrubs, 95),
    repaintMaxMs: Math.max(...bench.scrubs),
    blocks: Number(document.getElementById('map').dataset.blocks),
  };
  await fetch('/bench/ui-result', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(result) });
  document.body.dataset.bench = JSON.stringify(result);
}
