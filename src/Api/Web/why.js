// The why panel: the decision behind one page at `at` (its ordered rules, each fact a link to the event
// that set it) and below it the page's history, each entry a link to its point in time.

import { esc, size, typeName } from './format.js';

const seqLink = (seq, label) => (seq == null ? '' : `<a class="seq" data-seq="${seq}" href="#" title="move the scrubber to seq ${seq}">${esc(label ?? '@' + seq)}</a>`);

function verdict(why) {
  const m = why.mapping;
  if (!m) return `<p class="verdict">not mapped: <span data-role="outcome">${esc(why.outcome.replace(/_/g, ' '))}</span></p>`;
  return `<p class="verdict"><span class="chip ${esc(m.memType)}">${esc(typeName(m.memType, m.ipat))}</span>
    ${esc(size(m.size))} block at <code>${esc(m.gpa)}</code>, <code>${esc(m.perms)}</code></p>
    <p>decided at ${seqLink(m.decidedAt, 'seq ' + m.decidedAt)} under <code>${esc(m.policy)}</code>${why.outcome === 'relaxed' ? ' (relaxed)' : ''}</p>`;
}

function rules(why) {
  if (!why.explanation.length) return '<p class="placeholder">No fault has touched this page yet.</p>';
  return `<ol class="rules">${why.explanation.map(s => `<li data-rule="${esc(s.rule)}">
      <div class="rule-id">${esc(s.rule)}</div>
      <div>${esc(s.text)}</div>
      <ul class="facts">${s.facts.map(f => `<li data-fact="${esc(f.name)}" ${f.seq == null ? '' : `data-seq="${f.seq}"`}><code>${esc(f.name)}</code> = <code>${esc(f.value)}</code> ${seqLink(f.seq)}</li>`).join('')}</ul>
    </li>`).join('')}</ol>`;
}

function historyList(history, at) {
  if (!history) return '<p class="placeholder">loading history…</p>';
  if (!history.changes.length) return '<p class="placeholder">Nothing ever changed this page.</p>';
  // The entry in force at `at`: the last change at or before it.
  const current = history.changes.filter(c => c.seq <= at).pop();
  return `<ul class="history">${history.changes.map(c => `<li data-seq="${c.seq}" class="${c === current ? 'now' : ''}">
      ${seqLink(c.seq, 'seq ' + c.seq)} <code>${esc(c.type)}</code> <span class="hint">${esc(c.projection)}</span><br>
      <span class="mono">${esc(c.change)}</span>${c.input ? ` <span class="hint">(from ${esc(c.input.type)} ${seqLink(c.input.seq)})</span>` : ''}
    </li>`).join('')}</ul>`;
}

/** Draws the panel; the root's data attributes carry what tests and scripts read. */
export function renderWhy(root, why, history, highlightRule) {
  root.dataset.gpa = why.gpa;
  root.dataset.at = String(why.at);
  root.dataset.outcome = why.outcome;
  root.dataset.memtype = why.mapping?.memType ?? '';
  root.innerHTML = `<h2>why <code>${esc(why.gpa)}</code> at seq ${esc(why.at)}</h2>
    ${verdict(why)}
    <h3>rules, in the order the kernel applies them</h3>
    ${rules(why)}
    ${why.lastChange ? `<p class="hint">last change: ${esc(why.lastChange.type)} ${seqLink(why.lastChange.seq)}</p>` : ''}
    <h3>history of this page</h3>
    <div id="history">${historyList(history, why.at)}</div>`;
  if (highlightRule) root.querySelector(`li[data-rule="${CSS.escape(highlightRule)}"]`)?.classList.add('found');
}

export function renderHistoryOnly(root, history, at) {
  const el = root.querySelector('#history');
  if (el) el.innerHTML = historyList(history, at);
}

export function clearWhy(root) {
  for (const k of ['gpa', 'at', 'outcome', 'memtype']) root.dataset[k] = '';
  root.innerHTML = '<p class="placeholder">Click a block of the map (or search a gpa) to see why it is mapped as it is.</p>';
}
