// The API client and the signed-in session. The tokens live only in this module's variables: never
// in localStorage, sessionStorage or a cookie, where another script or a shared machine could read
// them later. A reload forgets them, and the admin signs in again. The one exception is each
// account's device token (below), which only lets this browser's logins with the right password
// skip the account's lockout.

// APIError carries the API's stable error code and its safe message.
export class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let session = null; // {accessToken, refreshToken, user}
let refreshTimer = 0;
let refreshing = null; // the one refresh in flight: a second would spend the rotated token twice
const listeners = new Set();

// onSessionEnd registers fn(reason) for when the session ends without the admin asking (refresh
// refused, or the account is no longer an admin): the page returns to sign-in and drops its data.
export function onSessionEnd(fn) {
  listeners.add(fn);
}

export const currentUser = () => (session ? session.user : null);
export const accessToken = () => (session ? session.accessToken : '');

async function decode(res) {
  if (res.status === 204) return null;
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON: a proxy's page; the status says enough
  }
  if (!res.ok) {
    const e = body && body.error;
    throw new APIError(res.status, e ? e.code : 'http_' + res.status,
      e ? e.message : `The server answered ${res.status}.`);
  }
  return body;
}

async function post(path, body) {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    credentials: 'omit',
    cache: 'no-store',
  });
  return decode(res);
}

// Device tokens, by account (the address as typed, trimmed and lower-cased), in localStorage: a
// login that carries its device token is counted on the token's own budget, not on the account's
// lockout, so whoever knows an admin's address cannot lock the admin out of the dashboard with wrong
// passwords. The token is no credential without the password.
const DEVICE_TOKENS = 'fluxauth.deviceTokens';
const deviceKey = (email) => String(email).trim().toLowerCase();

function deviceTokens() {
  try {
    const all = JSON.parse(localStorage.getItem(DEVICE_TOKENS) || '{}');
    return all && typeof all === 'object' ? all : {};
  } catch {
    return {};
  }
}

function keepDeviceToken(email, token) {
  if (!token) return;
  try {
    localStorage.setItem(DEVICE_TOKENS, JSON.stringify({ ...deviceTokens(), [deviceKey(email)]: token }));
  } catch {
    // storage refused (private mode, quota): the next login is a plain one
  }
}

// signIn logs in and keeps the tokens when the account is an admin. A non-admin's new session is
// revoked at once (nothing of theirs is kept or shown) and an APIError not_admin is thrown.
export async function signIn(email, password) {
  const body = { email, password };
  const deviceToken = deviceTokens()[deviceKey(email)];
  if (deviceToken) body.deviceToken = deviceToken;
  const auth = await post('/api/auth/login', body);
  if (!auth.user || auth.user.userType !== 'admin') {
    fetch('/api/auth/logout', {
      method: 'POST', headers: { Authorization: 'Bearer ' + auth.accessToken }, credentials: 'omit',
    }).catch(() => {});
    throw new APIError(403, 'not_admin', 'This account is not an administrator.');
  }
  keepDeviceToken(email, auth.deviceToken);
  adopt(auth);
  return auth.user;
}

function adopt(auth) {
  session = { accessToken: auth.accessToken, refreshToken: auth.refreshToken, user: auth.user };
  clearTimeout(refreshTimer);
  // Refresh a minute before expiry (or at 80% of a short lifetime), so requests never carry an
  // expired token while the page is open.
  const life = Math.max(10, Number(auth.expiresIn) || 900);
  const lead = Math.min(60, life * 0.2);
  refreshTimer = setTimeout(() => refresh().catch(() => {}), (life - lead) * 1000);
}

// refresh rotates the refresh token; concurrent callers share one request.
export function refresh() {
  if (!session) return Promise.reject(new APIError(401, 'signed_out', 'Signed out.'));
  if (!refreshing) {
    const rt = session.refreshToken;
    refreshing = post('/api/auth/refresh', { refreshToken: rt })
      .then((auth) => {
        if (!auth.user || auth.user.userType !== 'admin') {
          end('not_admin');
          throw new APIError(403, 'not_admin', 'This account is no longer an administrator.');
        }
        adopt(auth);
      })
      .catch((err) => {
        if (err instanceof APIError && err.status >= 400 && err.status < 500 && err.code !== 'rate_limited' && session) {
          end('expired');
        }
        throw err;
      })
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

function end(reason) {
  if (!session) return;
  session = null;
  clearTimeout(refreshTimer);
  for (const fn of listeners) fn(reason);
}

// signOut revokes the session on the server and forgets the tokens.
export async function signOut() {
  const s = session;
  session = null;
  clearTimeout(refreshTimer);
  if (s) {
    await fetch('/api/auth/logout', {
      method: 'POST', headers: { Authorization: 'Bearer ' + s.accessToken }, credentials: 'omit',
    }).catch(() => {});
  }
}

// authedFetch sends the access token; on 401 it refreshes once and retries. A 403 from an admin
// endpoint means the account is no longer an admin: the session ends.
export async function authedFetch(path, init = {}, retried = false) {
  if (!session) throw new APIError(401, 'signed_out', 'Signed out.');
  const headers = new Headers(init.headers || {});
  headers.set('Authorization', 'Bearer ' + session.accessToken);
  const res = await fetch(path, { ...init, headers, credentials: 'omit', cache: 'no-store' });
  if (res.status === 401 && !retried) {
    await refresh();
    return authedFetch(path, init, true);
  }
  if (res.status === 401) {
    end('expired');
  }
  if (res.status === 403) {
    end('not_admin');
  }
  return res;
}

// api calls a JSON endpoint as the signed-in admin.
export async function api(path, init = {}) {
  return decode(await authedFetch(path, init));
}
