// The live feed: the latest events, newest first, filtered; critical ones pinned until acknowledged.
import { api } from './api.js';
import { $, el, replace } from './dom.js';
import { EVENT_TYPES, eventItem, typeLabel } from './events.js';

const KEEP = 200; // events held in the list; older ones fall off the end
const PIN_WINDOW_MS = 60 * 60 * 1000; // criticals already recorded when the page opens are pinned for an hour

let events = []; // newest first
const seen = new Set(); // ids in events: the stream re-sends a window behind Last-Event-ID
const pinned = new Map(); // id → event, until acknowledged
const acknowledged = new Set();
let filter = { type: '', severity: '', userId: '', ip: '' };
let loadSeq = 0;

const newestFirst = (a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0);

function matches(e) {
  return (!filter.type || e.eventType === filter.type) &&
    (!filter.severity || e.severity === filter.severity) &&
    (!filter.userId || e.userId === filter.userId) &&
    (!filter.ip || e.ipAddress === filter.ip);
}

function pin(e, now) {
  if (e.severity !== 'critical' || acknowledged.has(e.id) || pinned.has(e.id)) return false;
  if (now && now - new Date(e.createdAt).getTime() > PIN_WINDOW_MS) return false;
  pinned.set(e.id, e);
  return true;
}

function renderPinned() {
  const list = [...pinned.values()].sort(newestFirst);
  $('pinned').hidden = list.length === 0;
  replace($('pinned-list'), list.map((e) => eventItem(e, { onAck: acknowledge })));
}

function acknowledge(e) {
  pinned.delete(e.id);
  acknowledged.add(e.id);
  renderPinned();
  // Keep keyboard focus in the page: the acknowledged item's button is gone.
  const next = $('pinned-list').querySelector('button') || $('feed-title');
  if (next === $('feed-title')) next.tabIndex = -1;
  next.focus();
}

function renderFeed() {
  $('feed-empty').hidden = events.length > 0;
  replace($('feed-list'), events.map((e) => eventItem(e)));
}

// add takes an event from the stream.
export function add(e) {
  if (!e || !e.id) return;
  if (pin(e, 0)) renderPinned();
  if (seen.has(e.id) || !matches(e)) return;
  seen.add(e.id);
  events.unshift(e);
  // A resumed stream may deliver an event committed late with an earlier time.
  if (events.length > 1 && newestFirst(events[0], events[1]) > 0) events.sort(newestFirst);
  while (events.length > KEEP) seen.delete(events.pop().id);
  const list = $('feed-list');
  if (events[0] === e) {
    list.prepend(eventItem(e));
    while (list.children.length > KEEP) list.lastElementChild.remove();
    $('feed-empty').hidden = true;
  } else {
    renderFeed();
  }
}

// load replaces the list with the latest events matching the filter, and returns the highest seq
// among them ('' when none has one).
export async function load() {
  const seq = ++loadSeq;
  const q = new URLSearchParams({ limit: '100' });
  for (const [k, v] of Object.entries(filter)) if (v) q.set(k, v);
  const body = await api('/api/admin/security/events?' + q);
  if (seq !== loadSeq) return; // a newer filter won
  const streamed = events.filter((e) => matches(e));
  const byId = new Map();
  for (const e of [...body.events, ...streamed]) byId.set(e.id, e);
  events = [...byId.values()].sort(newestFirst).slice(0, KEEP);
  seen.clear();
  for (const e of events) seen.add(e.id);
  const now = Date.now();
  let changed = false;
  for (const e of body.events) changed = pin(e, now) || changed;
  if (changed) renderPinned();
  renderFeed();
  const seqs = body.events.map((e) => Number(e.seq)).filter((n) => Number.isFinite(n));
  return seqs.length ? String(Math.max(...seqs)) : '';
}

// redraw shows the list again, e.g. with user emails learned since it was drawn.
export function redraw() {
  renderFeed();
  renderPinned();
}

// reset forgets everything: the page signed out.
export function reset() {
  events = [];
  seen.clear();
  pinned.clear();
  acknowledged.clear();
  renderPinned();
  renderFeed();
}

export function setupFilters(onError) {
  const sel = $('filter-type');
  if (sel.options.length === 1) {
    for (const t of EVENT_TYPES) sel.append(el('option', { value: t }, typeLabel(t)));
  }
  const form = $('filters');
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    filter = {
      type: String(d.get('type') || ''), severity: String(d.get('severity') || ''),
      userId: String(d.get('userId') || '').trim(), ip: String(d.get('ip') || '').trim(),
    };
    load().catch(onError);
  });
  // The selects apply at once; the text fields on Apply or Enter.
  for (const id of ['filter-type', 'filter-severity']) {
    $(id).addEventListener('change', () => form.requestSubmit());
  }
  form.addEventListener('reset', () => setTimeout(() => form.requestSubmit(), 0));
}
