// The op25b rollout page. Everything it shows comes from the REST API with
// the user's token; it computes nothing the server does not say, except the
// countdowns (from next_at and the server's clock) and the timeline layout.

const TOKEN_KEY = 'op25b.token';
const REFRESH_MS = 10000;
const OFFENDERS_LIMIT = 10;

let skewMs = 0; // server clock minus this browser's, from the last answer
let refreshTimer = null;

class AuthError extends Error {}

// api fetches one JSON document with the stored token, if any.
async function api(path) {
  const headers = { Accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = 'Bearer ' + token;
  const resp = await fetch(path, { headers, cache: 'no-store' });
  if (resp.status === 401) throw new AuthError('the token was refused');
  let body = null;
  try { body = await resp.json(); } catch { /* not JSON: reported below */ }
  if (!resp.ok) {
    const msg = body && body.error ? body.error.message : resp.statusText;
    const err = new Error(`${path}: ${resp.status} ${msg}`);
    err.status = resp.status;
    throw err;
  }
  return body;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'data') for (const [dk, dv] of Object.entries(v)) e.dataset[dk] = dv;
    else if (k === 'style') e.style.cssText = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function serverNow() { return Date.now() + skewMs; }

// countdown renders a duration as "3d 04:05:06" or "04:05:06".
function countdown(ms) {
  if (ms <= 0) return 'now';
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const hms = [h, m, s].map((n) => String(n).padStart(2, '0')).join(':');
  return d > 0 ? `${d}d ${hms}` : hms;
}

// shortTime is "MM-DD hh:mm" of an RFC 3339 time, in the offset it was
// written with (the operator's own).
function shortTime(rfc3339) {
  const m = /^\d{4}-(\d\d-\d\d)T(\d\d:\d\d)/.exec(rfc3339);
  return m ? `${m[1]} ${m[2]}` : rfc3339;
}

function describePhase(ph) {
  const parts = [];
  parts.push(ph.block === 'all' ? 'block all' : `block ${(ph.block || []).join(', ') || 'nothing'}`);
  if (ph.relays === false) parts.push('relays too');
  if (ph.mode === 'observe') parts.push('observe only');
  if (ph.pops && ph.pops.length) parts.push(`only ${ph.pops.join(', ')}`);
  return parts.join(' · ');
}

// health classifies a bridge of /v1/status.
function health(b, revision) {
  if (!b.connected) return ['down', 'disconnected'];
  if (!b.master) return ['warn', 'no master'];
  if (b.last_error) return ['warn', 'error'];
  if (b.applied_revision < revision) return ['warn', 'behind'];
  return ['ok', 'ok'];
}

function renderSummary(status, rollout) {
  const bridges = status.bridges;
  const up = bridges.filter((b) => b.connected).length;
  const applied = bridges.filter((b) => b.connected && b.applied_revision >= status.revision).length;
  const parts = [
    el('span', { id: 'revision' }, `revision ${status.revision}`),
    el('span', {}, `${up}/${bridges.length} bridges connected, ${applied} applied`),
    el('span', {}, `replicas: ${status.replicas.map((r) => `${r.id} (${r.version})`).join(', ') || 'none'}`),
  ];
  if (status.etcd && status.etcd.nospace) parts.push(el('span', { class: 'bad' }, 'etcd NOSPACE: writes refused'));
  if (status.document_error) parts.push(el('span', { class: 'bad' }, `document rejected: ${status.document_error}`));
  document.getElementById('summary').replaceChildren(...parts);
  void rollout;
}

function renderBridges(status, rollout) {
  const byPop = new Map();
  for (const pop of rollout.pops) byPop.set(pop, []);
  for (const b of status.bridges) {
    const key = b.registered ? b.pop : '';
    if (!byPop.has(key)) byPop.set(key, []);
    byPop.get(key).push(b);
  }
  const cards = [];
  for (const [pop, list] of byPop) {
    const up = list.filter((b) => b.connected).length;
    const rows = list.map((b) => {
      const [cls, text] = health(b, status.revision);
      return el('tr', { data: { dpid: b.dpid } },
        el('td', { class: 'name' }, b.name || '(unnamed)'),
        el('td', { class: 'mono' }, b.dpid),
        el('td', {}, el('span', { class: `badge ${cls}`, title: b.last_error || '' }, text)),
        el('td', {}, b.master || '—'),
        el('td', { class: 'num' }, String(b.applied_revision)));
    });
    cards.push(el('div', { class: 'pop', data: { pop } },
      el('h3', {}, pop || 'unregistered', el('span', { class: 'sub' }, ` ${up}/${list.length} up`)),
      list.length === 0
        ? el('p', { class: 'empty' }, 'no bridges')
        : el('table', {},
          el('thead', {}, el('tr', {}, ['bridge', 'dpid', 'health', 'master', 'applied'].map((h) => el('th', {}, h)))),
          el('tbody', {}, rows))));
  }
  document.getElementById('bridges').replaceChildren(...cards);
}

// timeline draws one service at one pop: a bar per applicable phase from
// its start to the next one's, the active one marked, and "now".
function timeline(svc, pr, range) {
  const [t0, t1] = range;
  const x = (t) => `${(((t - t0) / (t1 - t0)) * 100).toFixed(3)}%`;
  const start = (i) => (svc.phases[i].from ? Date.parse(svc.phases[i].from) : t0);
  const bar = el('div', { class: 'bar' });
  pr.phases.forEach((idx, k) => {
    const from = Math.max(start(idx), t0);
    const to = k + 1 < pr.phases.length ? start(pr.phases[k + 1]) : t1;
    const ph = svc.phases[idx];
    const active = pr.active === idx;
    bar.append(el('div', {
      class: `seg${active ? ' active' : ''}${ph.block === 'all' ? ' all' : ''}`,
      style: `left:${x(from)};width:calc(${x(to)} - ${x(from)})`,
      title: `phase ${idx}: ${describePhase(ph)}${ph.from ? ' from ' + ph.from : ' (always)'}`,
      data: { phase: String(idx) },
    }, `#${idx}`, ph.from ? el('span', { class: 'seg-from' }, ` ${shortTime(ph.from)}`) : null));
  });
  bar.append(el('div', { class: 'now', style: `left:${x(serverNow())}` }));

  const activeText = pr.active === undefined
    ? el('span', { class: 'inactive' }, 'no phase yet: SMTP forwarded')
    : el('span', { class: 'active-phase' }, `phase ${pr.active}: ${describePhase(svc.phases[pr.active])}`,
      svc.phases[pr.active].from ? ` since ${svc.phases[pr.active].from}` : ' (always)');
  let nextText = el('span', { class: 'next none' }, 'no later phase');
  if (pr.next !== undefined) {
    const at = Date.parse(pr.next_at);
    nextText = el('span', { class: 'next' }, `phase ${pr.next} (${describePhase(svc.phases[pr.next])}) in `,
      el('strong', { class: 'countdown', data: { deadline: String(at) } }, countdown(at - serverNow())),
      ` at ${svc.phases[pr.next].from}`);
  }
  return el('div', { class: 'timeline', data: { service: svc.name, pop: pr.pop, active: pr.active === undefined ? '' : String(pr.active) } },
    el('div', { class: 'tl-pop' }, pr.pop),
    bar,
    el('div', { class: 'tl-text' }, activeText, el('br'), 'next: ', nextText));
}

function renderRollout(rollout) {
  const now = serverNow();
  const blocks = rollout.services.map((svc) => {
    const starts = svc.phases.filter((p) => p.from).map((p) => Date.parse(p.from));
    let t0 = Math.min(now, ...starts);
    let t1 = Math.max(now, ...starts);
    const pad = Math.max((t1 - t0) * 0.08, 1800000);
    t0 -= pad; t1 += pad;
    return el('div', { class: 'service', data: { service: svc.name } },
      el('h3', {}, svc.name),
      svc.pops.length === 0 ? el('p', { class: 'empty' }, 'no pops in the document') : svc.pops.map((pr) => timeline(svc, pr, [t0, t1])));
  });
  if (blocks.length === 0) blocks.push(el('p', { class: 'empty' }, 'no services in the document'));
  document.getElementById('rollout').replaceChildren(...blocks);
}

function renderOffenders(result) {
  const box = document.getElementById('offenders');
  if (result.unavailable) {
    box.replaceChildren(el('p', { class: 'empty', id: 'offenders-state' }, `offender tracking is not available here (${result.unavailable})`));
    return;
  }
  const list = result.offenders || [];
  if (list.length === 0) {
    box.replaceChildren(el('p', { class: 'empty', id: 'offenders-state' }, 'no blocked SMTP attempts in the last hour'));
    return;
  }
  const rows = list.map((o) => el('tr', { data: { src: o.src } },
    el('td', { class: 'mono' }, o.src),
    el('td', {}, o.pool || ''),
    el('td', {}, o.pop || ''),
    el('td', { class: 'num' }, String(o.attempts)),
    el('td', { class: 'num' }, String(o.destinations)),
    el('td', {}, o.observed ? 'observed' : 'blocked'),
    el('td', {}, o.last_seen ? new Date(o.last_seen).toLocaleTimeString() : '')));
  box.replaceChildren(el('table', { id: 'offenders-table' },
    el('thead', {}, el('tr', {}, ['source', 'pool', 'pop', 'attempts', 'destinations', '', 'last seen'].map((h) => el('th', {}, h)))),
    el('tbody', {}, rows)));
  // replaceChildren would show a null as the text "null".
  if (result.truncated) box.append(el('p', { class: 'hint' }, 'more sources than tracked: the list is incomplete'));
}

async function offenders() {
  try {
    return await api(`/v1/offenders?since=1h&limit=${OFFENDERS_LIMIT}`);
  } catch (e) {
    if (e instanceof AuthError) throw e;
    return { unavailable: e.status === 404 ? 'this server has no /v1/offenders' : e.message };
  }
}

function showLogin(reason) {
  document.getElementById('content').hidden = true;
  document.getElementById('forget').hidden = true;
  const form = document.getElementById('login');
  document.getElementById('login-reason').textContent = reason;
  form.hidden = false;
  document.body.dataset.state = 'login';
  document.getElementById('token').focus();
}

async function refresh() {
  clearTimeout(refreshTimer);
  const errBox = document.getElementById('error');
  try {
    const sent = Date.now();
    const [status, rollout, offs] = await Promise.all([api('/v1/status'), api('/v1/rollout'), offenders()]);
    const received = Date.now();
    skewMs = Date.parse(rollout.at) - (sent + received) / 2;
    renderSummary(status, rollout);
    renderBridges(status, rollout);
    renderRollout(rollout);
    renderOffenders(offs);
    errBox.hidden = true;
    document.getElementById('login').hidden = true;
    document.getElementById('content').hidden = false;
    document.getElementById('forget').hidden = !sessionStorage.getItem(TOKEN_KEY);
    document.body.dataset.state = 'ready';
    document.body.dataset.updated = String(received);
  } catch (e) {
    if (e instanceof AuthError) {
      const had = sessionStorage.getItem(TOKEN_KEY);
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(had ? 'The token was refused. Enter another one.' : 'This API needs a token. A read token is enough.');
      return; // no polling without a token
    }
    errBox.textContent = `Cannot refresh: ${e.message}. Showing the last data; retrying.`;
    errBox.hidden = false;
    document.body.dataset.state = document.body.dataset.state === 'ready' ? 'ready' : 'error';
  }
  refreshTimer = setTimeout(refresh, REFRESH_MS);
}

function tick() {
  const now = serverNow();
  document.getElementById('clock').textContent = new Date(now).toLocaleString();
  let passed = false;
  for (const c of document.querySelectorAll('.countdown')) {
    const left = Number(c.dataset.deadline) - now;
    c.textContent = countdown(left);
    if (left <= 0) passed = true;
  }
  // A boundary passed: the server has another active phase now.
  if (passed && document.body.dataset.state === 'ready') refresh();
}

document.getElementById('login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = document.getElementById('token');
  sessionStorage.setItem(TOKEN_KEY, input.value.trim());
  input.value = '';
  refresh();
});
document.getElementById('forget').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  clearTimeout(refreshTimer);
  showLogin('Token forgotten. Enter a token to continue.');
});
setInterval(tick, 1000);
tick();
refresh();
