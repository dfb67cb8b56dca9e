// mt-cs dashboard. Everything comes from the JSON API under it
// (docs/formats/cs-web-api.md); every action is a job of the agent, started
// after a confirmation that names what it destroys. Text goes into the page
// with textContent only (never as HTML).
'use strict';

let csrf = '';
let state = {agents: [], streams: [], jobs: [], history: []};
let picked = null;  // {agent, of, point, stream} of the timeline
const COLORS = ['#2f6fde', '#d9822b', '#1e7b34', '#8e44ad', '#b3261e', '#16a2a2', '#6b6f00', '#c2185b'];

// ---- helpers
const $ = (id) => document.getElementById(id);
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}
function svgEl(tag, attrs = {}, text) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function fmtDuration(ns) {
  const s = Number(ns) / 1e9;
  if (s < 0) return '-';
  if (s < 1) return (s * 1000).toFixed(0) + ' ms';
  if (s < 120) return s.toFixed(1) + ' s';
  if (s < 7200) return (s / 60).toFixed(1) + ' min';
  return (s / 3600).toFixed(1) + ' h';
}
function fmtBytes(b) {
  b = Number(b);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
  return (i ? b.toFixed(1) : b.toFixed(0)) + ' ' + units[i];
}
function fmtAge(ns) {
  ns = Number(ns);
  if (!ns) return 'never';
  return fmtDuration(Date.now() * 1e6 - ns) + ' ago';
}
function fmtTime(ns) { return new Date(Number(ns) / 1e6).toISOString().replace('.000', ''); }
function row(cells) {
  const tr = el('tr');
  for (const c of cells) tr.append(c instanceof Node ? el('td', {}, c) : el('td', {text: String(c)}));
  return tr;
}
function fill(tableId, rows, empty) {
  const body = $(tableId).querySelector('tbody');
  body.replaceChildren(...rows);
  if (!rows.length) body.append(el('tr', {}, el('td', {class: 'muted', colspan: '9', text: empty})));
}
function setOptions(select, values, keep) {
  const old = keep ? select.value : '';
  select.replaceChildren(...values.map(([v, label]) => el('option', {value: v, text: label})));
  if (values.some(([v]) => v === old)) select.value = old;
}

async function api(path, opts = {}) {
  const headers = {};
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    headers['X-CSRF-Token'] = csrf;
  }
  const r = await fetch(path, {method: opts.method || 'GET', headers, credentials: 'same-origin',
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body)});
  if (r.status === 401) {
    location.href = '/login';
    throw new Error('not logged in');
  }
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || ('HTTP ' + r.status));
  return body;
}

// ---- views
function renderAlerts(alerts) {
  const list = alerts.map((a) => el('li', {class: 'bad',
    text: a.agent + ' · ' + a.alert.kind + (a.alert.stream ? ' · ' + a.alert.stream : '') + ': ' + a.alert.message}));
  $('alerts').replaceChildren(...(list.length ? list : [el('li', {class: 'muted', text: 'none'})]));
}

function renderAgents() {
  fill('agents', state.agents.map((a) => {
    const st = a.status || {};
    const cap = Number(st.retention_capacity_bytes || 0);
    const free = Number(st.retention_available_bytes || 0);
    const link = el('span', {class: a.connected ? 'good' : 'bad', text: a.connected ? 'connected' : 'down'});
    return row([a.id, a.hostname, link, fmtAge(a.last_seen_ns), (st.pairs || []).length,
      cap ? fmtBytes(free) + ' (' + Math.round(free * 100 / cap) + '%)' : '-', a.version]);
  }), 'No agent has registered yet (mtctl register --cs HOST).');
  const agentOptions = state.agents.map((a) => [a.id, a.id + ' (' + a.hostname + ')']);
  setOptions($('disks-agent'), agentOptions, true);
  setOptions($('points-agent'), agentOptions, true);
  updatePointsOf();
}

function renderStreams() {
  fill('streams', state.streams.map((s) => {
    const p = s.pair;
    const rpo = Number(p.rpo_ns);
    const limit = Number((p.policy || {}).rpo_threshold_ns || 0);
    const rpoCell = el('span', {class: rpo >= 0 && limit && rpo > limit ? 'bad' : '', 'data-stream': p.name,
      text: rpo < 0 ? '-' : fmtDuration(rpo)});
    rpoCell.classList.add('rpo');
    let resync = 'complete';
    for (const d of p.disks || []) {
      if (d.resync_state !== 'complete') {
        resync = d.resync_state + (Number(d.size_bytes) && Number(d.resync_bytes)
          ? ' ' + Math.floor(Number(d.resync_bytes) * 100 / Number(d.size_bytes)) + '%' : '');
      }
    }
    return row([s.agent, p.name, p.group || '-', p.state + (p.error ? ': ' + p.error : ''), resync, rpoCell,
      p.backlog_records + ' (' + fmtBytes(p.wal_bytes) + ')', fmtBytes(s.applied_bytes_per_second) + '/s',
      p.attached ? 'attached' : 'not attached']);
  }), 'No stream is protected yet.');
}

function renderJobs() {
  fill('jobs', state.jobs.slice(0, 30).map((j) => {
    const job = j.job;
    const total = Number(job.total_bytes);
    const bar = el('progress', {max: '100', value: total ? String(Math.floor(Number(job.done_bytes) * 100 / total))
      : (job.state === 'succeeded' ? '100' : '0')});
    const st = el('span', {class: job.state === 'failed' || job.state === 'interrupted' ? 'bad'
      : (job.state === 'succeeded' ? 'good' : ''), text: job.state});
    st.classList.add('job-state');
    const tr = row([j.agent, job.id, job.kind, st, bar, job.message]);
    tr.setAttribute('data-job', job.id);
    return tr;
  }), 'No job yet.');
}

// A line chart of series [{name, points: [[ns, value], ...]}] over the last 24 h.
function lineChart(svg, series, fmt, empty) {
  const W = 640, H = 220, L = 70, R = 10, T = 10, B = 40;
  svg.replaceChildren();
  const now = Date.now() * 1e6, from = now - 24 * 3600e9;
  let max = 0;
  for (const s of series) for (const [, v] of s.points) max = Math.max(max, v);
  if (!series.some((s) => s.points.length)) {
    svg.append(svgEl('text', {x: L, y: H / 2}, empty));
    return;
  }
  max = max > 0 ? max * 1.1 : 1;
  const x = (ns) => L + (W - L - R) * (ns - from) / (now - from);
  const y = (v) => T + (H - T - B) * (1 - v / max);
  svg.append(svgEl('line', {x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#9aa3b5'}));
  svg.append(svgEl('line', {x1: L, y1: T, x2: L, y2: H - B, stroke: '#9aa3b5'}));
  for (const f of [0, 0.5, 1]) {
    svg.append(svgEl('text', {x: 4, y: y(max * f / 1.1) + 4}, fmt(max * f / 1.1)));
  }
  for (let h = 0; h <= 24; h += 6) {
    svg.append(svgEl('text', {x: x(from + h * 3600e9) - 12, y: H - B + 16}, h === 24 ? 'now' : '-' + (24 - h) + ' h'));
  }
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = s.points.map(([t, v]) => x(t).toFixed(1) + ',' + y(v).toFixed(1)).join(' ');
    if (s.points.length > 1) {
      svg.append(svgEl('polyline', {points: pts, fill: 'none', stroke: color, 'stroke-width': 1.5}));
    }
    // The latest value as a dot: minutes of data are under a pixel wide on 24 h.
    const [t, v] = s.points[s.points.length - 1];
    svg.append(svgEl('circle', {cx: x(t), cy: y(v), r: 3, fill: color}));
    svg.append(svgEl('rect', {x: L + 8 + 130 * i, y: H - 15, width: 9, height: 9, fill: color}));
    svg.append(svgEl('text', {x: L + 21 + 130 * i, y: H - 6}, s.name));
  });
}

function renderCharts() {
  const rpo = {}, ret = {}, rate = {}, last = {};
  for (const s of state.history) {
    const t = Number(s.ns);
    if (s.stream === '') {
      const cap = Number(s.retention_capacity_bytes);
      if (cap) (ret[s.agent] = ret[s.agent] || []).push([t, cap - Number(s.retention_available_bytes)]);
      continue;
    }
    const key = s.agent + '/' + s.stream;
    if (Number(s.rpo_ns) >= 0) (rpo[key] = rpo[key] || []).push([t, Number(s.rpo_ns)]);
    // Applied bytes per second between two samples (the counter restarts with the agent).
    const applied = Number(s.bytes_applied);
    const prev = last[key];
    if (prev && t > prev[0] && applied >= prev[1]) {
      (rate[key] = rate[key] || []).push([t, (applied - prev[1]) * 1e9 / (t - prev[0])]);
    }
    last[key] = [t, applied];
  }
  lineChart($('rate-chart'), Object.entries(rate).map(([name, points]) => ({name, points})),
    (v) => fmtBytes(v) + '/s', 'No throughput figures yet (two samples are needed).');
  lineChart($('rpo-chart'), Object.entries(rpo).map(([name, points]) => ({name, points})), fmtDuration,
    'No RPO figures yet.');
  lineChart($('retention-chart'), Object.entries(ret).map(([name, points]) => ({name, points})), fmtBytes,
    'No retention figures yet.');
}

async function renderDisks() {
  const agent = $('disks-agent').value;
  if (!agent) return fill('disks', [], 'No agent.');
  try {
    const inv = await api('/api/agents/' + encodeURIComponent(agent) + '/disks');
    fill('disks', (inv.disks || []).map((d) => row([d.name, d.wwid || d.identity || '-', fmtBytes(d.size_bytes),
      d.role, d.reason])), 'No disk.');
  } catch (e) {
    fill('disks', [], e.message);
  }
}

// ---- points and actions
function updatePointsOf() {
  const agent = $('points-agent').value;
  const streams = state.streams.filter((s) => s.agent === agent && s.pair.state !== 'committed');
  const groups = [...new Set(streams.map((s) => s.pair.group).filter((g) => g))];
  setOptions($('points-of'), [...groups.map((g) => ['group:' + g, 'group ' + g]),
    ...streams.map((s) => ['stream:' + s.pair.name, 'stream ' + s.pair.name])], true);
}

function streamsOf(agent, of) {
  const [kind, name] = [of.slice(0, of.indexOf(':')), of.slice(of.indexOf(':') + 1)];
  return state.streams.filter((s) => s.agent === agent && s.pair.state !== 'committed' &&
    (kind === 'group' ? s.pair.group === name : s.pair.name === name)).map((s) => s.pair);
}

async function loadPoints() {
  const agent = $('points-agent').value, of = $('points-of').value;
  if (!agent || !of) return;
  const [kind, name] = [of.slice(0, of.indexOf(':')), of.slice(of.indexOf(':') + 1)];
  const svg = $('timeline');
  svg.replaceChildren(svgEl('text', {x: 10, y: 24}, 'asking ' + agent + '…'));
  let report;
  try {
    report = await api('/api/agents/' + encodeURIComponent(agent) + '/points?' + kind + '=' + encodeURIComponent(name));
  } catch (e) {
    svg.replaceChildren(svgEl('text', {x: 10, y: 24}, e.message));
    return;
  }
  // One lane per stream; a group view offers the group tags every stream has.
  const lanes = report.streams || [];
  const H = 24 + 26 * lanes.length;
  svg.setAttribute('viewBox', '0 0 960 ' + H);
  svg.style.height = H + 'px';
  svg.replaceChildren();
  // The span of each stream's crash-consistent points (every write boundary
  // between its oldest and latest), and its tagged points on it.
  let from = Infinity, to = -Infinity;
  const span = (s) => [Number(s.oldest_time_ns), Number(s.latest_time_ns)].filter((t) => t > 0);
  for (const s of lanes) {
    for (const t of span(s)) { from = Math.min(from, t); to = Math.max(to, t); }
    for (const p of s.points || []) { from = Math.min(from, Number(p.time_ns)); to = Math.max(to, Number(p.time_ns)); }
  }
  if (from === Infinity) {
    svg.append(svgEl('text', {x: 10, y: 24}, 'No point yet.'));
    return;
  }
  if (to === from) to = from + 1e9;
  const x = (ns) => 110 + 830 * (ns - from) / (to - from);
  svg.append(svgEl('text', {x: 110, y: H - 4}, fmtTime(from)));
  svg.append(svgEl('text', {x: 800, y: H - 4}, fmtTime(to)));
  const counts = {};
  for (const s of lanes) for (const p of s.points || []) if (p.group_tag_id) counts[p.group_tag_id] = (counts[p.group_tag_id] || 0) + 1;
  lanes.forEach((s, i) => {
    const y = 16 + 26 * i;
    svg.append(svgEl('text', {x: 4, y: y + 4}, s.stream));
    svg.append(svgEl('line', {x1: 110, y1: y, x2: 940, y2: y, stroke: '#dde1e8'}));
    const [a, b] = span(s);
    if (a && b) {
      const bar = svgEl('line', {x1: x(a), y1: y, x2: Math.max(x(b), x(a) + 2), y2: y, stroke: '#8a93a6',
        'stroke-width': 4, class: 'crash-span'});
      bar.append(svgEl('title', {}, 'crash-consistent: every write from seq ' + s.oldest_seq + ' (' + s.oldest_time +
        ') to seq ' + s.latest_seq + ' (' + s.latest_time + ')'));
      svg.append(bar);
    }
    for (const p of s.points || []) {
      const common = kind === 'group' && p.group_tag_id && counts[p.group_tag_id] === lanes.length;
      const c = svgEl('circle', {cx: x(Number(p.time_ns)), cy: y, r: p.kind === 'app' ? 6 : 4,
        fill: p.kind === 'app' ? '#1e7b34' : '#8a93a6', class: 'point', 'data-name': p.name,
        'data-seq': p.seq, 'data-stream': s.stream, 'data-group-tag': p.group_tag_id || ''});
      c.append(svgEl('title', {}, p.name + ' (' + p.kind + ', seq ' + p.seq + ', ' + p.time + ')' +
        (common ? ', group tag ' + p.group_tag_id + ' in every stream' : '')));
      c.addEventListener('click', () => pick({agent, kind, name, point: p, stream: s.stream, common}, c));
      svg.append(c);
    }
  });
}

function pick(p, circle) {
  picked = p;
  for (const c of document.querySelectorAll('#timeline .point')) c.classList.remove('selected');
  circle.classList.add('selected');
  const pt = p.point;
  const what = p.kind === 'group'
    ? (p.common ? 'group ' + p.name + ' at group tag ' + pt.group_tag_id + ' (every stream has it)'
      : 'stream ' + p.stream + ' only: ' + pt.name + ' is not a point of every stream of the group')
    : 'stream ' + p.stream;
  $('point-detail').textContent = pt.name + ' — ' + pt.kind + '-consistent, seq ' + pt.seq + ', ' + pt.time + '; ' + what;
  $('point-detail').className = '';
  const pair = streamsOf(p.agent, 'stream:' + p.stream)[0];
  setOptions($('act-disk'), ((pair && pair.disks) || []).map((d) => [String(d.disk), d.disk + ' (' + d.target_id + ')']), true);
  $('actions').hidden = false;
}

function confirmAction(title, text) {
  return new Promise((resolve) => {
    const d = $('confirm');
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    const done = (v) => { d.close(); $('confirm-yes').onclick = $('confirm-no').onclick = null; resolve(v); };
    $('confirm-yes').onclick = () => done(true);
    $('confirm-no').onclick = () => done(false);
    d.showModal();
  });
}

async function startJob(agent, spec, title, text) {
  if (!(await confirmAction(title, text))) return;
  try {
    const j = await api('/api/agents/' + encodeURIComponent(agent) + '/jobs', {method: 'POST', body: spec});
    $('error').textContent = '';
    state.jobs.unshift(j);
    renderJobs();
  } catch (e) {
    $('error').textContent = title + ' refused: ' + e.message;
  }
}

function targetsOf(pairs) {
  return pairs.map((p) => p.name + ' (' + (p.disks || []).map((d) => d.target_id).join(', ') + ')').join('; ');
}

async function onRollback() {
  const p = picked;
  if (!p) return;
  let spec, streams;
  if (p.kind === 'group' && p.common) {
    streams = streamsOf(p.agent, 'group:' + p.name);
    spec = {rollback: {group: p.name, to: 'group-tag:' + p.point.group_tag_id}};
  } else {
    streams = streamsOf(p.agent, 'stream:' + p.stream);
    spec = {rollback: {streams: [p.stream], to: 'seq:' + p.point.seq}};
  }
  await startJob(p.agent, spec, 'Roll back',
    'Roll back ' + streams.map((s) => s.name).join(', ') + ' on ' + p.agent + ' to ' + p.point.name +
    (spec.rollback.group ? ' (group tag ' + p.point.group_tag_id + ')' : ' (seq ' + p.point.seq + ')') +
    '. This destroys every write after that point on the target disks ' + targetsOf(streams) +
    ': they are rewritten in place, and the points after it are gone.');
}

async function onExport() {
  const p = picked;
  if (!p) return;
  const out = $('act-out').value.trim();
  const disk = Number($('act-disk').value || 0);
  await startJob(p.agent, {export_disk: {stream: p.stream, disk, at: 'seq:' + p.point.seq, out}}, 'Export',
    'Export disk ' + disk + ' of ' + p.stream + ' as it was at ' + p.point.name + ' (seq ' + p.point.seq + ') to ' +
    out + ' on ' + p.agent + '. This destroys what ' + out + ' holds now (it is overwritten). The stream pauses for the copy.');
}

async function onVsnap() {
  const p = picked;
  if (!p) return;
  const disk = Number($('act-disk').value || 0);
  const name = $('act-vsnap-name').value.trim();
  const spec = {vsnap_create: {stream: p.stream, disk, at: 'seq:' + p.point.seq}};
  if (name) spec.vsnap_create.name = name;
  await startJob(p.agent, spec, 'Create vsnap',
    'Create a virtual snapshot of disk ' + disk + ' of ' + p.stream + ' at ' + p.point.name + ' (seq ' + p.point.seq +
    ') on ' + p.agent + '. Nothing is destroyed: the target is not written; the snapshot takes space on the retention volume.');
}

async function onVsnapRemove() {
  const agent = $('points-agent').value;
  const name = $('act-vsnap-remove-name').value.trim();
  if (!agent || !name) return ($('error').textContent = 'Remove vsnap: name the vsnap.');
  await startJob(agent, {vsnap_remove: {name}}, 'Remove vsnap',
    'Remove vsnap ' + name + ' on ' + agent + '. This destroys the snapshot device and everything written to it.');
}

async function onCommit() {
  const agent = $('points-agent').value, of = $('points-of').value;
  const streams = streamsOf(agent, of);
  if (!streams.length) return ($('error').textContent = 'Commit: pick the streams (Of).');
  await startJob(agent, {commit: {streams: streams.map((s) => s.name)}}, 'Commit',
    'Commit ' + streams.map((s) => s.name).join(', ') + ' on ' + agent + '. This destroys their retention and every ' +
    'point: protection ends and nothing can be rolled back any more. The target disks ' + targetsOf(streams) +
    ' keep what they hold.');
}

// ---- refresh
async function refresh() {
  try {
    const [agents, streams, alerts, jobs] = await Promise.all([api('/api/agents'), api('/api/streams'),
      api('/api/alerts'), api('/api/jobs')]);
    state.agents = agents.agents || [];
    state.streams = streams.streams || [];
    state.jobs = jobs.jobs || [];
    renderAlerts(alerts.alerts || []);
    renderAgents();
    renderStreams();
    renderJobs();
    $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (e) {
    $('updated').textContent = 'update failed: ' + e.message;
  }
}
async function refreshHistory() {
  try {
    state.history = (await api('/api/history')).samples || [];
    renderCharts();
  } catch (e) {
    $('updated').textContent = 'update failed: ' + e.message;
  }
}

async function start() {
  try {
    csrf = (await api('/api/session')).csrf_token;
  } catch (e) {
    return;
  }
  $('logout').addEventListener('click', async () => {
    await api('/api/logout', {method: 'POST', body: {}}).catch(() => {});
    location.href = '/login';
  });
  $('disks-agent').addEventListener('change', renderDisks);
  $('points-agent').addEventListener('change', updatePointsOf);
  $('points-load').addEventListener('click', loadPoints);
  $('act-rollback').addEventListener('click', onRollback);
  $('act-export').addEventListener('click', onExport);
  $('act-vsnap').addEventListener('click', onVsnap);
  $('act-vsnap-remove').addEventListener('click', onVsnapRemove);
  $('act-commit').addEventListener('click', onCommit);
  await refresh();
  await Promise.all([refreshHistory(), renderDisks()]);
  setInterval(refresh, 2000);
  setInterval(refreshHistory, 30000);
}
start();
