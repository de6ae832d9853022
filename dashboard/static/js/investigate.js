// Investigate and act: user search, a user's page (sessions, identities, events, lockout) with the
// revoke and unlock actions, and an IP's page.
import { api } from './api.js';
import { $, el, replace, time, userHref, ipHref } from './dom.js';
import { eventItem, rememberEmail } from './events.js';

const dialog = () => $('confirm');

// confirmAction asks in the modal <dialog>; resolves true only on Confirm. Cancel is focused first,
// so Enter on a stray keypress never revokes anything.
export function confirmAction(title, message, confirmLabel) {
  const d = dialog();
  $('confirm-title').textContent = title;
  $('confirm-message').textContent = message;
  $('confirm-ok').textContent = confirmLabel;
  d.returnValue = '';
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'confirm'), { once: true });
    d.showModal();
    $('confirm-cancel').focus();
  });
}

function say(id, text, isError = false) {
  const node = $(id);
  node.textContent = text;
  node.classList.toggle('is-error', isError);
}

// searchUsers lists the users whose email matches the query.
export async function searchUsers(query) {
  say('user-results-status', 'Searching…');
  const body = await api('/api/admin/users?' + new URLSearchParams({ query }));
  const users = body.users || [];
  for (const u of users) rememberEmail(u.id, u.email);
  say('user-results-status', users.length === 1 ? '1 user found.' : `${users.length} users found.`);
  replace($('user-results'), users.map((u) => el('li', {},
    el('a', { href: userHref(u.id) }, u.email),
    el('span', { class: 'muted' }, ` ${u.name || ''}`),
    el('span', { class: 'tag' }, u.userType || 'client'),
    u.emailVerified ? el('span', { class: 'tag tag-ok' }, 'verified') : null,
    el('span', { class: 'muted' }, ' created ', time(u.createdAt, true)))));
}

let current = null; // the user whose page is open: {id, email}

function duration(seconds) {
  const s = Math.max(0, Math.round(Number(seconds) || 0));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
}

function fact(term, value) {
  return [el('dt', {}, term), el('dd', {}, value)];
}

// showUser loads a user's page.
export async function showUser(id) {
  current = { id, email: id };
  $('user-title').textContent = 'User';
  say('user-action-status', '');
  const body = await api('/api/admin/users/' + encodeURIComponent(id));
  if (!current || current.id !== id) return;
  const u = body.user || {};
  rememberEmail(u.id, u.email);
  current.email = u.email || id;
  $('user-title').textContent = u.email || id;
  replace($('user-facts'),
    fact('Name', u.name || '—'), fact('User ID', el('code', {}, u.id || id)), fact('Type', u.userType || 'client'),
    fact('Email verified', u.emailVerified ? 'yes' : 'no'), fact('Created', time(u.createdAt, true)));

  const lock = body.lockout || {};
  $('lockout-state').textContent = lock.locked
    ? `Locked out: sign-in is refused for another ${duration(lock.retryAfterSeconds)}.`
    : 'Not locked out.';
  $('lockout-state').className = lock.locked ? 'state-bad' : 'state-ok';
  $('unlock').disabled = !lock.locked;

  const sessions = body.sessions || [];
  $('sessions-empty').hidden = sessions.length > 0;
  $('revoke-all').disabled = sessions.length === 0;
  replace($('sessions-body'), sessions.map((s) => el('tr', { 'data-session': s.id },
    el('td', { 'data-label': 'Device' }, s.deviceName || 'Unknown device'),
    el('td', { 'data-label': 'IP address' }, s.ipAddress ? el('a', { href: ipHref(s.ipAddress) }, s.ipAddress) : '—'),
    el('td', { 'data-label': 'User agent', class: 'ua', title: s.userAgent || '' }, s.userAgent || '—'),
    el('td', { 'data-label': 'Created' }, time(s.createdAt, true)),
    el('td', { 'data-label': 'Last used' }, time(s.lastUsedAt, true)),
    el('td', {}, el('button', {
      type: 'button', class: 'btn btn-danger btn-small', 'aria-label': `Revoke session on ${s.deviceName || 'unknown device'} from ${s.ipAddress || 'unknown IP'}`,
      onclick: () => revokeSession(s),
    }, 'Revoke')))));

  const identities = body.identities || [];
  replace($('identities'), identities.length ? identities.map((i) => el('li', {},
    el('strong', {}, i.provider), ` ${i.email || ''} `, i.emailVerified ? el('span', { class: 'tag tag-ok' }, 'verified') : null,
    el('span', { class: 'muted' }, ' linked ', time(i.createdAt, true)))) : el('li', { class: 'muted' }, 'Password only; no Google or Apple sign-in linked.'));

  const events = body.events || [];
  replace($('user-events'), events.length ? events.map((e) => eventItem(e)) : el('li', { class: 'muted' }, 'No recent events.'));
}

async function act(title, message, label, path, method, done) {
  if (!(await confirmAction(title, message, label))) return;
  const id = current.id;
  try {
    await api(path, { method });
    say('user-action-status', done);
  } catch (err) {
    say('user-action-status', err.message, true);
    return;
  }
  await showUser(id).catch((err) => say('user-action-status', err.message, true));
  say('user-action-status', done);
}

function revokeSession(s) {
  return act('Revoke this session?',
    `${current.email} will be signed out on ${s.deviceName || 'this device'} (${s.ipAddress || 'unknown IP'}). Its tokens stop working at once.`,
    'Revoke session', '/api/admin/sessions/' + encodeURIComponent(s.id), 'DELETE', 'Session revoked.');
}

export function setupUserActions() {
  $('revoke-all').addEventListener('click', () => act('Revoke all sessions?',
    `${current.email} will be signed out everywhere; every device must sign in again.`,
    'Revoke all sessions', `/api/admin/users/${encodeURIComponent(current.id)}/revoke-sessions`, 'POST', 'All sessions revoked.'));
  $('unlock').addEventListener('click', () => act('Clear the lockout?',
    `${current.email} will be able to try signing in again at once.`,
    'Clear lockout', `/api/admin/users/${encodeURIComponent(current.id)}/unlock`, 'POST', 'Lockout cleared.'));
}

// showIP loads the recent events of one address.
export async function showIP(ip) {
  $('ip-title').textContent = ip;
  say('ip-status', 'Loading…');
  replace($('ip-events'));
  const body = await api('/api/admin/security/events?' + new URLSearchParams({ ip, limit: '100' }));
  const events = body.events || [];
  say('ip-status', events.length ? `${events.length} recent events from this address.` : 'No events from this address.');
  replace($('ip-events'), events.map((e) => eventItem(e)));
}

export function reset() {
  current = null;
  replace($('user-results'));
  replace($('user-facts'));
  replace($('sessions-body'));
  replace($('identities'));
  replace($('user-events'));
  replace($('ip-events'));
  say('user-results-status', '');
  say('user-action-status', '');
  if (dialog().open) dialog().close();
}
