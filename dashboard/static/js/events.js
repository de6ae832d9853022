// How a security event is shown, wherever it appears (the live feed, pinned alerts, a user's or an
// IP's page).
import { el, time, userHref, ipHref } from './dom.js';

// The event types fluxauth records, in the order the filter lists them; a type the server adds later
// is shown by its name.
export const EVENT_TYPES = [
  'failed_login', 'login_success', 'signup', 'rate_limit_exceeded', 'token_revoked',
  'suspicious_token_usage', 'session_hijack_attempt', 'device_fingerprint_mismatch',
  'multiple_device_login', 'legacy_token_exchanged', 'mfa_enrolled', 'mfa_removed',
  'mfa_challenge_failed', 'recovery_code_used', 'recovery_codes_regenerated',
];

export const typeLabel = (t) => {
  const s = String(t || 'event').replaceAll('_', ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
};

// Events carry user IDs; the page shows the email instead wherever it has learned it (an event's
// metadata, the charts' top accounts, a search, a user's page), and else a short ID.
const emails = new Map();

// rememberEmail reports whether the email was new, so a list already drawn can be redrawn.
export function rememberEmail(id, email) {
  if (!id || typeof email !== 'string' || !email || emails.get(id) === email) return false;
  emails.set(id, email);
  return true;
}

export const forgetEmails = () => emails.clear();

// A UUIDv7 begins with its time, so its end tells users apart.
export const userName = (id) => emails.get(id) || (id.length > 13 ? '…' + id.slice(-8) : id);

const SEVERITIES = new Set(['info', 'warning', 'critical']);
const severityOf = (e) => (SEVERITIES.has(e.severity) ? e.severity : 'info');

// metadataText summarises the metadata as "key: value" pairs, shortened; the full text is in title.
function metadataText(m) {
  if (!m || typeof m !== 'object') return '';
  return Object.entries(m)
    .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`)
    .join(', ');
}

// eventItem renders one event as a list item. The severity is written out, not only coloured. With
// onAck, the item gets an Acknowledge button.
export function eventItem(e, { onAck } = {}) {
  const sev = severityOf(e);
  const meta = metadataText(e.metadata);
  const who = [];
  if (e.userId) {
    if (e.metadata) rememberEmail(e.userId, e.metadata.email);
    who.push(el('span', { class: 'ev-field' }, 'user ', el('a', { href: userHref(e.userId), title: e.userId }, userName(e.userId))));
  }
  if (e.ipAddress) {
    who.push(el('span', { class: 'ev-field' }, 'IP ', el('a', { href: ipHref(e.ipAddress) }, e.ipAddress)));
  }
  const li = el('li', { class: `event sev-${sev}`, 'data-id': e.id, 'data-type': e.eventType },
    el('div', { class: 'ev-head' },
      el('span', { class: `badge badge-${sev}` }, sev),
      el('strong', { class: 'ev-type' }, typeLabel(e.eventType)),
      time(e.createdAt)),
    el('div', { class: 'ev-who' }, who, meta ? el('span', { class: 'ev-meta', title: meta }, meta) : null),
    e.userAgent ? el('div', { class: 'ev-ua', title: e.userAgent }, e.userAgent) : null);
  if (onAck) {
    li.append(el('button', {
      type: 'button', class: 'btn btn-small', 'aria-label': `Acknowledge ${typeLabel(e.eventType)} at ${new Date(e.createdAt).toLocaleTimeString()}`,
      onclick: () => onAck(e),
    }, 'Acknowledge'));
  }
  return li;
}
