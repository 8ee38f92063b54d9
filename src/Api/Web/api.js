// Calls to the audit HTTP API. Failures become ApiError with the problem detail the server sent;
// a 401 asks the user for the token once (kept for the session) and retries with it.

const TOKEN_KEY = 'audit-token';

export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
  }
}

let asking = null;
let profiling = false;

/** Records a performance measure of each response's JSON parse (the UI bench turns it on). */
export function profileParsing(on) { profiling = on; }

/** Shows the token dialog; resolves to the token typed, or null when cancelled. One dialog for every waiting call. */
function askToken() {
  if (asking) return asking;
  const dialog = document.getElementById('token-dialog');
  const input = document.getElementById('token-input');
  asking = new Promise(resolve => {
    dialog.addEventListener('close', () => {
      asking = null;
      const token = dialog.returnValue === 'ok' ? input.value.trim() : '';
      input.value = '';
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      resolve(token || null);
    }, { once: true });
    dialog.showModal();
    input.focus();
  });
  return asking;
}

async function call(method, path, signal) {
  for (let attempt = 0; ; attempt++) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = { Accept: 'application/json' };
    // The server checks writes (and, when guarded, reads) against 'Authorization: Bearer <AUDIT_TOKEN>'.
    if (token) headers.Authorization = `Bearer ${token}`;
    const r = await fetch(path, { method, headers, signal });
    if (r.status === 401 && attempt === 0) {
      if (token) sessionStorage.removeItem(TOKEN_KEY);
      if (await askToken()) continue;
    }
    const text = await r.text();
    let body = null;
    const parsing = performance.now();
    try { body = text ? JSON.parse(text) : null; } catch { body = null; }
    // The UI bench splits a repaint into server, transfer, parse and draw (bench.js reads these measures).
    if (profiling) performance.measure(`parse ${path}`, { start: parsing, detail: { bytes: text.length } });
    if (!r.ok) {
      throw new ApiError(r.status, body?.title ?? `HTTP ${r.status}`, body?.detail ?? (body ? '' : text.slice(0, 200)));
    }
    return body;
  }
}

const q = params => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') s.set(k, String(v));
  const t = s.toString();
  return t ? `?${t}` : '';
};
const run = id => `/runs/${encodeURIComponent(id)}`;

export const api = {
  runs: () => call('GET', '/runs'),
  policies: () => call('GET', '/policies'),
  map: (id, at, windows, signal) => call('GET', `${run(id)}/map${q({ at, windows })}`, signal),
  why: (id, gpa, at, signal) => call('GET', `${run(id)}/why${q({ gpa, at })}`, signal),
  history: (id, gpa) => call('GET', `${run(id)}/history${q({ gpa })}`),
  timeline: (id, by, buckets) => call('GET', `${run(id)}/timeline${q({ by, buckets })}`),
  find: (id, type, after, back) => call('GET', `${run(id)}/find${q({ type, after, direction: back ? 'back' : '' })}`),
  findRule: (id, rule, after, back) => call('GET', `${run(id)}/find${q({ rule, after, direction: back ? 'back' : '' })}`),
  replay: (id, policy) => call('POST', `${run(id)}/replay${q({ policy })}`),
  diff: (a, b) => call('GET', `/diff${q({ a, b })}`),
  lint: id => call('GET', `${run(id)}/lint`),
};
