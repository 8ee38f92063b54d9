// The comparison: a replay of this run under another policy (POST /runs/{run}/replay) or a second run of
// the same workload (GET /diff). Both become entries {seq, gpa, lo, hi, memType, ipat, label}: where the
// decision differs, and what the other side decided there.

import { esc, num, size, typeName } from './format.js';

const $ = id => document.getElementById(id);

const describe = d => (d.memType ? `${typeName(d.memType, d.ipat)} ${size(d.size)} ${d.perms}` : d.outcome.replace(/_/g, ' '));

function fromReplay(body) {
  return body.differences.map(d => {
    const at = d.after.gpa ? d.after : d.before;
    return {
      // The decision follows its input; the state after it is the one worth seeing.
      seq: d.inputSeq + 1,
      gpa: at.gpa ? num(at.gpa) : null,
      size: at.size,
      memType: d.after.memType,
      ipat: d.after.ipat,
      what: d.what,
      label: `${describe(d.before)} → ${describe(d.after)} under ${body.policy}${d.partsAt ? ` (parts at ${d.partsAt})` : ''}`,
    };
  });
}

function fromDiff(body) {
  return body.differences.map(d => {
    const a = d.a?.decision, b = d.b?.decision;
    const at = a?.gpa ? a : b;
    const key = d.key.startsWith('gpa ') ? num(d.key.slice(4)) : null;
    return {
      seq: d.a?.seq ?? d.b?.seq ?? 1,
      gpa: at?.gpa ? num(at.gpa) : key,
      size: at?.size ?? 4096,
      memType: b?.memType ?? null,
      ipat: b?.ipat ?? null,
      what: `${d.key} #${d.nth}`,
      label: `${a ? describe(a) : 'none'} here → ${b ? describe(b) : 'none'} in ${body.b}${d.partsAt ? ` (parts at ${d.partsAt})` : ''}`,
    };
  });
}

/** A map mark for an entry about a page; null for one about a memslot or an ioctl. */
export function markOf(e) {
  return e.gpa == null ? null : { lo: e.gpa, hi: e.gpa + (e.size ?? 4096), memType: e.memType, ipat: e.ipat, label: e.label };
}

export function renderComparison(body, kind, jump) {
  const entries = (kind === 'policy' ? fromReplay(body) : fromDiff(body)).sort((a, b) => a.seq - b.seq);
  const panel = $('compare-panel');
  panel.hidden = false;
  panel.dataset.count = String(entries.length);
  $('compare-title').textContent = kind === 'policy'
    ? `replayed under ${body.policy}: ${body.summary.differing} of ${body.summary.decisions} decisions differ`
    : `diff with run ${body.b}: ${body.differing} of ${body.compared} decisions differ`;
  $('compare-hint').textContent = 'Marked blocks decide differently. Overlaid, the lower third of a marked block has the other side\'s type; '
    + 'side by side, the other side has a lane of its own. Click an entry to go to its decision.';
  const list = $('differences');
  list.innerHTML = entries.map((e, i) => `<li data-i="${i}" data-seq="${e.seq}" data-gpa="${e.gpa == null ? '' : '0x' + e.gpa.toString(16)}">
      <a class="seq" href="#">seq ${e.seq}</a> ${esc(e.what)}: ${esc(e.label)}</li>`).join('') || '<li>no decision differs</li>';
  list.onclick = ev => {
    const li = ev.target.closest('li[data-i]');
    if (!li) return;
    ev.preventDefault();
    jump(entries[Number(li.dataset.i)]);
  };
  return { entries, first: entries[0] ?? null, jump };
}

export function clearComparison() {
  $('compare-panel').hidden = true;
  $('differences').innerHTML = '';
}
