// liverec's dashboard: plain JavaScript, no build step. It talks to /ui/api/* with the session
// cookie set at login; every change goes through the API's own actions (POST /ui/api/action),
// so a button does exactly what the same call through an SDK does.
'use strict';

const state = { overview: null, fetchedAt: 0, domains: [], hls: null, timer: null };
const $ = (sel) => document.querySelector(sel);

// Builds an element; strings become text nodes (nothing from the server is parsed as HTML).
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

async function api(path, options = {}) {
  const headers = { 'X-Liverec-UI': '1', ...(options.headers || {}) };
  const response = await fetch(`api/${path}`, { credentials: 'same-origin', ...options, headers });
  if (response.status === 401) {
    showLogin();
    throw new Error('logged out');
  }
  const text = await response.text();
  const body = text ? JSON.parse(text) : {};
  if (!response.ok) {
    throw new Error(body.Code ? `${body.Code}: ${body.Message}` : (body.error || `HTTP ${response.status}`));
  }
  return body;
}

// Runs one API action (same parameters as the OpenAPI) and returns its JSON answer.
function action(name, params) {
  const body = new URLSearchParams({ Action: name, ...params });
  return api('action', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body,
  });
}

function showError(err) {
  $('#action-error').textContent = err ? String(err.message || err) : '';
}

// ---- login ----

function showLogin() {
  clearInterval(state.timer);
  state.timer = null;
  $('#app').hidden = true;
  $('#who').hidden = true;
  $('#logout').hidden = true;
  $('#login').hidden = false;
}

function showApp(keyId) {
  $('#login').hidden = true;
  $('#app').hidden = false;
  $('#who').hidden = false;
  $('#who').textContent = keyId;
  $('#logout').hidden = false;
  if (!state.timer) state.timer = setInterval(tick, 1000);
}

$('#login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('#login-error').textContent = '';
  const response = await fetch('api/login', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-Liverec-UI': '1' },
    body: JSON.stringify({ access_key_id: $('#key-id').value.trim(), access_key_secret: $('#key-secret').value }),
  });
  $('#key-secret').value = '';
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    $('#login-error').textContent = body.error || `Login failed (HTTP ${response.status}).`;
    return;
  }
  await refresh();
});

$('#logout').addEventListener('click', async () => {
  await fetch('api/logout', { method: 'POST', credentials: 'same-origin', headers: { 'X-Liverec-UI': '1' } });
  showLogin();
});

// ---- tabs ----

for (const button of document.querySelectorAll('nav button')) {
  button.addEventListener('click', () => showTab(button.dataset.tab));
}

function showTab(name) {
  for (const b of document.querySelectorAll('nav button')) b.classList.toggle('active', b.dataset.tab === name);
  for (const s of document.querySelectorAll('.tab')) s.hidden = s.id !== `tab-${name}`;
}

// ---- overview: streams, storage, errors ----

let pollEvery = 0;
async function tick() {
  // The overview every 2 s; the countdowns every second from the last one.
  if (pollEvery++ % 2 === 0) await refresh().catch(() => {});
  else renderStreams();
}

async function refresh() {
  const overview = await api('overview');
  state.overview = overview;
  state.fetchedAt = Date.now();
  showApp(overview.access_key_id);
  setDomains(overview.domains);
  renderStreams();
  renderHealth();
}

function setDomains(domains) {
  if (JSON.stringify(domains) === JSON.stringify(state.domains)) return;
  state.domains = domains;
  for (const select of document.querySelectorAll('select.domains')) {
    const current = select.value;
    select.replaceChildren(...domains.map((d) => el('option', { value: d }, d)));
    if (domains.includes(current)) select.value = current;
  }
}

const fmtSecs = (s) => {
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return h ? `${h}h ${m}m` : m ? `${m}m ${sec}s` : `${sec}s`;
};
const fmtBytes = (n) => (n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(0)} KiB` : `${n} B`);
const streamId = (s) => `${s.domain}/${s.app}/${s.stream}`;

function recorderCell(s, elapsed) {
  const r = s.recorder;
  if (!r) return el('span', { class: 'badge idle' }, 'not recorded');
  if (r.state === 'paused') {
    const left = r.delay_remaining_secs - elapsed;
    const why = r.by_stop ? 'stopped' : 'publisher gone';
    return el('span', { class: 'badge paused', 'data-state': 'paused' },
      `paused (${why}) — files in ${fmtSecs(left)}`);
  }
  return el('span', { class: `badge ${r.state}`, 'data-state': r.state },
    r.state === 'recording' ? `recording #${r.recording}` : 'idle');
}

function renderStreams() {
  const o = state.overview;
  if (!o) return;
  const elapsed = (Date.now() - state.fetchedAt) / 1000;
  const rows = o.streams.map((s) => {
    const id = streamId(s);
    const command = (name) => el('button', {
      type: 'button', 'data-command': name,
      onclick: async () => {
        showError(null);
        try {
          await action('RealTimeRecordCommand', { DomainName: s.domain, AppName: s.app, StreamName: s.stream, Command: name });
          await refresh();
        } catch (err) { showError(err); }
      },
    }, name);
    const video = s.video ? `${s.video.codec} ${s.video.width}×${s.video.height}` : '—';
    return el('tr', { 'data-stream': id },
      el('td', {},
        el('span', { class: `badge ${s.live ? 'live' : 'offline'}` }, s.live ? 'live' : 'offline'), ' ',
        el('a', { href: '#', class: 'mono', onclick: (e) => { e.preventDefault(); openRecordings(s); } }, id)),
      el('td', {}, video),
      el('td', {}, s.audio || '—'),
      el('td', {}, s.live ? `${s.kbps} kbit/s` : '—'),
      el('td', {}, s.live ? fmtSecs(s.uptime_secs + elapsed) : '—'),
      el('td', {}, s.live ? s.viewers : '—'),
      el('td', { class: 'recorder' }, recorderCell(s, elapsed)),
      el('td', {}, ['start', 'stop', 'cancel_delay', 'restart'].map(command)));
  });
  $('#streams tbody').replaceChildren(...rows);
  $('#no-streams').hidden = rows.length > 0;
}

function renderHealth() {
  const o = state.overview;
  $('#uploads tbody').replaceChildren(...o.uploads.map((u) => el('tr', { 'data-bucket': u.bucket },
    el('td', {}, u.bucket), el('td', {}, u.pending), el('td', {}, u.failing), el('td', {}, fmtBytes(u.bytes)),
    el('td', {}, u.pending ? fmtSecs(u.oldest_age_secs) : '—'), el('td', { class: 'mono' }, u.last_error || ''))));
  if (!o.uploads.length) {
    $('#uploads tbody').append(el('tr', {}, el('td', { colspan: 6, class: 'hint' },
      'No [buckets.NAME] section is configured: recordings are written to the local data directory.')));
  }
  $('#recent').replaceChildren(...o.recent.slice().reverse().map((e) => el('li', {},
    el('span', { class: 'mono' }, new Date(e.at).toISOString().replace('T', ' ').slice(0, 19)), ' ',
    el('span', { class: `level ${e.level}` }, e.level), e.message, ' ', el('span', { class: 'mono hint' }, e.fields))));
  const c = o.callbacks;
  $('#outbox').textContent = c
    ? `Outbox: ${c.pending} waiting (${c.retrying} of them retrying), ${c.failed} given up.`
    : 'Outbox: unknown (the database did not answer).';
}

// ---- recordings ----

const utc = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function openRecordings(s) {
  const form = $('#recordings-form');
  form.domain.value = s.domain;
  form.app.value = s.app;
  form.stream.value = s.stream;
  showTab('recordings');
  listRecordings().catch(showError);
}

$('#recordings-form').addEventListener('submit', (e) => {
  e.preventDefault();
  listRecordings().catch(showError);
});

async function listRecordings() {
  showError(null);
  const form = $('#recordings-form');
  const end = Date.now() + 60_000;
  const start = end - Number(form.hours.value) * 3600_000;
  const reply = await action('DescribeLiveStreamRecordIndexFiles', {
    DomainName: form.domain.value, AppName: form.app.value, StreamName: form.stream.value,
    StartTime: utc(start), EndTime: utc(end), PageSize: '30', Order: 'desc',
  });
  const items = reply.RecordIndexInfoList?.RecordIndexInfo || [];
  const rows = items.map((r) => el('tr', { 'data-record': r.RecordId },
    el('td', {}, r.StartTime), el('td', {}, r.EndTime), el('td', {}, `${Number(r.Duration).toFixed(1)} s`),
    el('td', {}, r.Format || ''),
    el('td', { class: 'mono' }, r.OssObject),
    el('td', {},
      el('button', { type: 'button', 'data-play': r.RecordId, onclick: () => play(r.RecordUrl, r.Format) }, 'Play'), ' ',
      el('a', { href: r.RecordUrl, download: r.OssObject.split('/').pop(), 'data-download': r.RecordId }, 'Download'))));
  $('#recordings tbody').replaceChildren(...rows);
  if (!rows.length) $('#recordings tbody').append(el('tr', {}, el('td', { colspan: 6, class: 'hint' }, 'No recordings in this range.')));
  else if (Number(reply.TotalNum) > rows.length) $('#recordings tbody').append(el('tr', {}, el('td', { colspan: 6, class: 'hint' }, `The newest ${rows.length} of ${reply.TotalNum}: narrow the range for older ones.`)));
}

function play(url, format) {
  const video = $('#player');
  const status = $('#player-status');
  $('#player-box').hidden = false;
  if (state.hls) { state.hls.destroy(); state.hls = null; }
  const isPlaylist = /\.m3u8(\?|$)/.test(new URL(url, location.href).pathname + '?');
  status.textContent = `Playing ${format || ''} …`;
  video.onended = () => { status.textContent = 'Played to the end.'; };
  video.onerror = () => { status.textContent = `Cannot play: ${video.error?.message || 'error'}`; };
  if (isPlaylist && window.Hls && Hls.isSupported()) {
    const hls = new Hls();
    state.hls = hls;
    hls.on(Hls.Events.ERROR, (_, data) => { if (data.fatal) status.textContent = `Cannot play: ${data.details}`; });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else {
    video.src = url;
  }
  video.play().catch(() => {});
}

// ---- configs ----

$('#configs-form').addEventListener('submit', (e) => {
  e.preventDefault();
  showConfigs().catch(showError);
});

// The first list of objects in an answer (Alibaba wraps lists: {X: {Y: [..]}}).
function listIn(value) {
  if (Array.isArray(value)) return value;
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'RequestId') continue;
      const found = listIn(v);
      if (found) return found;
    }
  }
  return null;
}

const SECRET = /auth_key|secret|key\d?$/i;
function cellText(key, value) {
  if (value && typeof value === 'object') {
    return JSON.stringify(value, (k, v) => (SECRET.test(k) && typeof v === 'string' ? '••••' : v));
  }
  return SECRET.test(key) ? '••••' : String(value);
}

function objectsTable(items) {
  if (!items || !items.length) return el('p', { class: 'hint' }, 'None.');
  const keys = [...new Set(items.flatMap((i) => Object.keys(i)))];
  return el('table', {},
    el('thead', {}, el('tr', {}, keys.map((k) => el('th', {}, k)))),
    el('tbody', {}, items.map((i) => el('tr', {}, keys.map((k) => el('td', { class: 'mono' }, i[k] === undefined ? '' : cellText(k, i[k])))))));
}

async function showConfigs() {
  showError(null);
  const domain = $('#configs-form').domain.value;
  const sections = [
    ['Record configs', 'DescribeLiveRecordConfig', { DomainName: domain, PageSize: '30' }],
    ['Record callbacks', 'DescribeLiveRecordNotifyConfig', { DomainName: domain }],
    ['Triggered pulls', 'DescribeLiveLazyPullStreamConfig', { DomainName: domain }],
    ['Scheduled pulls', 'DescribeLivePullStreamConfig', { DomainName: domain }],
    ['Signed URLs (aliauth)', 'DescribeLiveDomainConfigs', { DomainName: domain, FunctionNames: 'aliauth' }],
  ];
  const out = [];
  for (const [title, name, params] of sections) {
    out.push(el('h3', {}, title));
    try {
      const reply = await action(name, params);
      const list = listIn(reply);
      out.push(list ? objectsTable(list) : objectsTable([Object.fromEntries(Object.entries(reply).filter(([k]) => k !== 'RequestId'))]));
    } catch (err) {
      out.push(el('p', { class: 'hint' }, String(err.message)));
    }
  }
  $('#configs').replaceChildren(...out);
}

// ---- callbacks ----

$('#callbacks-form').addEventListener('submit', (e) => {
  e.preventDefault();
  listCallbacks().catch(showError);
});

async function listCallbacks() {
  showError(null);
  const form = $('#callbacks-form');
  const end = Date.now() + 60_000;
  const params = { DomainName: form.domain.value, StartTime: utc(end - 24 * 3600_000), EndTime: utc(end), PageSize: '100' };
  if (form.status.value) params.Status = form.status.value;
  const reply = await action('DescribeLiveRecordNotifyRecords', params);
  const items = reply.CallbackList || [];
  $('#callbacks tbody').replaceChildren(...items.map((c) => {
    let eventId = null;
    try { eventId = JSON.parse(c.NotifyHeader || '{}')['Idempotency-Key'] || null; } catch { /* not JSON */ }
    return el('tr', {},
      el('td', {}, c.NotifyTime), el('td', { class: 'mono' }, `${c.AppName}/${c.StreamName}`), el('td', {}, c.NotifyType),
      el('td', {}, el('span', { class: `badge ${c.NotifyResult === 'success' ? 'live' : 'recording'}` }, c.NotifyResult)),
      el('td', { class: 'mono' }, c.NotifyResponse), el('td', {}, c.Description),
      el('td', {}, eventId && el('button', {
        type: 'button', 'data-resend': eventId,
        onclick: async () => {
          try {
            const r = await api('resend', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ event_id: eventId }) });
            $('#notice').textContent = r.resent ? `Callback ${eventId} queued to be sent again.` : `Callback ${eventId} is no longer in the outbox.`;
            await listCallbacks();
          } catch (err) { showError(err); }
        },
      }, 'Resend')));
  }));
}

refresh().catch(() => {});
