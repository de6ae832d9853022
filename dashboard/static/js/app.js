// The dashboard's entry point: sign-in, the views and the hash routes (#/, #/users, #/user/<id>,
// #/ip/<ip>), and the live updates while signed in.
import * as auth from './api.js';
import { $ } from './dom.js';
import * as feed from './feed.js';
import * as charts from './charts.js';
import * as investigate from './investigate.js';
import { forgetEmails } from './events.js';
import { openStream } from './stream.js';

const VIEWS = ['view-signin', 'view-live', 'view-users', 'view-user', 'view-ip', 'view-denied'];
const CHART_POLL_MS = 15000; // the charts' minute buckets also refresh soon after each streamed event
const CHART_DEBOUNCE_MS = 2000;

let closeStream = null;
let chartTimer = 0;
let chartSoon = 0;
let liveRun = 0; // which sign-in the live view belongs to

function show(id) {
  for (const v of VIEWS) $(v).hidden = v !== id;
  const signedIn = id !== 'view-signin' && id !== 'view-denied';
  $('nav').hidden = !signedIn;
  $('whoami').hidden = !signedIn;
  current($('nav-live'), id === 'view-live');
  current($('nav-users'), id === 'view-users' || id === 'view-user' || id === 'view-ip');
}

function current(link, on) {
  if (on) link.setAttribute('aria-current', 'page');
  else link.removeAttribute('aria-current');
}

// report shows a failure where the admin is looking; ending sessions are handled by onSessionEnd.
function report(err) {
  if (err && (err.code === 'signed_out' || err.status === 403)) return;
  const status = document.querySelector('section:not([hidden]) [role="status"]') || $('stream-status');
  status.textContent = err && err.message ? err.message : 'Something went wrong.';
  status.classList.add('is-error');
}

function focusHeading(id) {
  const h = $(id);
  if (h) {
    h.tabIndex = -1;
    h.focus({ preventScroll: false });
  }
}

async function route() {
  if (!auth.currentUser()) return;
  const [, view, ...rest] = (location.hash || '#/').split('/');
  const param = rest.length ? decodeURIComponent(rest.join('/')) : '';
  try {
    if (view === 'users') {
      show('view-users');
      focusHeading('users-title');
    } else if (view === 'user' && param) {
      show('view-user');
      focusHeading('user-title');
      await investigate.showUser(param);
    } else if (view === 'ip' && param) {
      show('view-ip');
      focusHeading('ip-title');
      await investigate.showIP(param);
    } else {
      show('view-live');
    }
  } catch (err) {
    report(err);
  }
}

// refreshCharts redraws the charts, and the feed when they named users it showed by ID.
function refreshCharts() {
  return charts.refresh().then((learned) => learned && feed.redraw()).catch(report);
}

function scheduleCharts(delay) {
  clearTimeout(chartSoon);
  chartSoon = setTimeout(refreshCharts, delay);
}

async function startLive() {
  const run = ++liveRun;
  charts.start();
  refreshCharts();
  chartTimer = setInterval(refreshCharts, CHART_POLL_MS);
  const status = $('stream-status');
  // The stream starts after the newest listed event, so none falls between the two.
  const resumeFrom = await feed.load().catch((err) => {
    report(err);
    return '';
  });
  if (run !== liveRun) return; // signed out (and maybe in again) while the list loaded
  closeStream = openStream((e) => {
    feed.add(e);
    scheduleCharts(CHART_DEBOUNCE_MS);
  }, (state, detail) => {
    status.classList.toggle('is-error', state !== 'live');
    status.textContent = state === 'live' ? 'Live' : state === 'reconnecting' ? `Reconnecting in ${detail} s…` : 'Disconnected';
  }, resumeFrom);
}

function stopLive() {
  liveRun++;
  if (closeStream) closeStream();
  closeStream = null;
  clearInterval(chartTimer);
  clearTimeout(chartSoon);
  charts.stop();
  feed.reset();
  investigate.reset();
  forgetEmails();
}

function signedIn(user) {
  $('whoami-email').textContent = user.email;
  startLive().catch(report);
  route();
}

function toSignIn(message) {
  stopLive();
  show('view-signin');
  $('signin-error').textContent = message || '';
  $('signin-password').value = '';
  $('signin-email').focus();
}

function denied(message) {
  stopLive();
  show('view-denied');
  $('denied-message').textContent = message;
  focusHeading('denied-title');
}

function setupSignIn() {
  const form = $('signin-form');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const email = $('signin-email').value.trim();
    const password = $('signin-password').value;
    const error = $('signin-error');
    if (!email || !password) {
      error.textContent = 'Enter your email and password.';
      (email ? $('signin-password') : $('signin-email')).focus();
      return;
    }
    error.textContent = '';
    $('signin-submit').disabled = true;
    try {
      const user = await auth.signIn(email, password);
      $('signin-password').value = '';
      signedIn(user);
    } catch (err) {
      $('signin-password').value = '';
      if (err.code === 'not_admin') {
        denied('This account is not an administrator. The security dashboard is for administrators only.');
      } else {
        error.textContent = err.status === 401 ? 'The email or password is wrong.' : err.message;
        $('signin-password').focus();
      }
    } finally {
      $('signin-submit').disabled = false;
    }
  });
  $('denied-back').addEventListener('click', () => toSignIn(''));
  $('signout').addEventListener('click', async () => {
    stopLive();
    await auth.signOut();
    toSignIn('You are signed out.');
  });
  auth.onSessionEnd((reason) => {
    if (reason === 'not_admin') {
      denied('This account is not an administrator (any more). Nothing more is shown.');
    } else {
      toSignIn('Your session has ended. Sign in again.');
    }
  });
}

function setupInvestigate() {
  $('user-search').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (location.hash !== '#/users') location.hash = '#/users';
    investigate.searchUsers($('user-query').value.trim()).catch(report);
  });
  $('ip-search').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const ip = $('ip-query').value.trim();
    if (ip) location.hash = '#/ip/' + encodeURIComponent(ip);
  });
  investigate.setupUserActions();
}

setupSignIn();
feed.setupFilters(report);
setupInvestigate();
window.addEventListener('hashchange', route);
toSignIn('');
