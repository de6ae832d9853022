// The last hour's charts, drawn with the vendored uPlot from /api/admin/security/timeseries. Each
// chart also says its totals in text (role="img" with a label), for those who cannot see it.
import uPlot from '../vendor/uPlot.esm.js';
import { api } from './api.js';
import { $, el, replace, userHref, ipHref } from './dom.js';
import { rememberEmail, typeLabel } from './events.js';

// Colours chosen to stay distinguishable on the dark background (and from each other).
const PALETTE = ['#60a5fa', '#f87171', '#fbbf24', '#34d399', '#c084fc', '#f472b6', '#22d3ee', '#a3e635', '#fb923c', '#e2e8f0'];
const TYPE_COLOURS = {
  failed_login: '#f87171', login_success: '#34d399', rate_limit_exceeded: '#fbbf24', signup: '#60a5fa',
  token_revoked: '#c084fc', suspicious_token_usage: '#fb923c', session_hijack_attempt: '#f472b6',
  device_fingerprint_mismatch: '#22d3ee', multiple_device_login: '#a3e635', legacy_token_exchanged: '#e2e8f0',
};
const colourOf = (type, i) => TYPE_COLOURS[type] || PALETTE[i % PALETTE.length];

const charts = new Map(); // box id → {plot, key}
let sessionSamples = []; // [unix seconds, active sessions], sampled at each refresh
let observer = null;

function axes() {
  const axis = { stroke: '#cbd5e1', grid: { stroke: '#334155', width: 1 }, ticks: { stroke: '#334155', width: 1 } };
  return [axis, { ...axis, size: 40 }];
}

function sizeOf(box) {
  const w = Math.max(200, Math.floor(box.clientWidth));
  return { width: w, height: window.matchMedia('(max-width: 600px)').matches ? 140 : 170 };
}

// draw (re)draws the chart in box with the given series ([{label, colour, values}]). The chart is
// rebuilt only when the set of series changes; otherwise its data is swapped in place.
function draw(boxId, xs, series, summary) {
  const box = $(boxId);
  box.setAttribute('role', 'img');
  box.setAttribute('aria-label', summary);
  const key = series.map((s) => s.label).join('|');
  const data = [xs, ...series.map((s) => s.values)];
  const existing = charts.get(boxId);
  if (existing && existing.key === key) {
    existing.plot.setData(data);
    return;
  }
  if (existing) existing.plot.destroy();
  const opts = {
    ...sizeOf(box),
    cursor: { drag: { x: false, y: false } },
    legend: { show: series.length > 1, live: false },
    scales: { y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    axes: axes(),
    series: [{}, ...series.map((s) => ({
      label: s.label, stroke: s.colour, width: 2, points: { show: false },
      fill: series.length === 1 ? s.colour + '33' : undefined,
    }))],
  };
  charts.set(boxId, { plot: new uPlot(opts, data, box), key });
  if (observer) observer.observe(box);
}

const sum = (a) => a.reduce((x, y) => x + y, 0);

function describe(name, xs, values) {
  const total = sum(values);
  if (total === 0) return `${name}: none in the last hour.`;
  let peak = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[peak]) peak = i;
  const at = new Date(xs[peak] * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return `${name}: ${total} in the last hour, at most ${values[peak]} per minute (${at}).`;
}

function single(boxId, name, type, ts, xs) {
  const values = ts.series[type] || xs.map(() => 0);
  draw(boxId, xs, [{ label: name, colour: colourOf(type, 0), values }], describe(name, xs, values));
  return sum(values);
}

function topList(list, items) {
  replace(list, items.length ? items : el('li', { class: 'muted' }, 'None'));
}

// refresh fetches the last hour and redraws every chart. It resolves true when it learned the
// email of a user it had not named before.
export async function refresh() {
  const ts = await api('/api/admin/security/timeseries?window=1h&step=1m');
  const xs = (ts.buckets || []).map((b) => Math.floor(new Date(b).getTime() / 1000));
  const types = Object.keys(ts.series || {}).sort();
  ts.series = ts.series || {};

  const byType = types.map((t, i) => ({ label: typeLabel(t), colour: colourOf(t, i), values: ts.series[t] }));
  const totals = types.map((t) => `${typeLabel(t)} ${sum(ts.series[t])}`).join(', ');
  draw('chart-types', xs, byType.length ? byType : [{ label: 'Events', colour: PALETTE[0], values: xs.map(() => 0) }],
    totals ? `Events per minute by type over the last hour. Totals: ${totals}.` : 'No events in the last hour.');

  $('tile-failed').textContent = single('chart-failed', 'Failed logins', 'failed_login', ts, xs);
  $('tile-ratelimited').textContent = single('chart-ratelimited', 'Rate-limit refusals', 'rate_limit_exceeded', ts, xs);
  $('tile-logins').textContent = single('chart-logins', 'Successful logins', 'login_success', ts, xs);
  $('tile-legacy').textContent = single('chart-legacy', 'Legacy token exchanges', 'legacy_token_exchanged', ts, xs);

  const active = Number(ts.activeSessions) || 0;
  $('tile-sessions').textContent = active;
  const now = Math.floor(Date.now() / 1000);
  sessionSamples.push([now, active]);
  sessionSamples = sessionSamples.filter(([t]) => t > now - 3600);
  // Two points at least, so a line is drawn from the first sample on.
  const samples = sessionSamples.length > 1 ? sessionSamples : [[now - 60, active], [now, active]];
  draw('chart-sessions', samples.map((s) => s[0]), [{ label: 'Active sessions', colour: '#34d399', values: samples.map((s) => s[1]) }],
    `Active sessions: ${active} now.`);

  topList($('top-ips'), (ts.topFailedLoginIps || []).map((t) =>
    el('li', {}, el('a', { href: ipHref(t.ip) }, t.ip), el('span', { class: 'count' }, String(t.count)))));
  let learned = false;
  for (const t of ts.topTargetedUsers || []) learned = rememberEmail(t.userId, t.email) || learned;
  topList($('top-users'), (ts.topTargetedUsers || []).map((t) =>
    el('li', {}, t.userId ? el('a', { href: userHref(t.userId) }, t.email || t.userId) : (t.email || 'unknown'),
      el('span', { class: 'count' }, String(t.count)))));
  $('charts-updated').textContent = 'Updated ' + new Date().toLocaleTimeString();
  return learned;
}

// start watches the chart boxes' widths; stop forgets the charts (signed out).
export function start() {
  if (!observer && 'ResizeObserver' in window) {
    observer = new ResizeObserver((entries) => {
      for (const entry of entries) {
        const c = charts.get(entry.target.id);
        if (c) c.plot.setSize(sizeOf(entry.target));
      }
    });
  }
}

export function stop() {
  for (const c of charts.values()) c.plot.destroy();
  charts.clear();
  sessionSamples = [];
  if (observer) observer.disconnect();
}
